"""The one table of torch dtypes by name, for ``--precision`` (autocast) and the stages' ``dtype`` options."""
from __future__ import annotations

from typing import Optional

import torch

#: a dtype option's names (the long and the short spelling) -> torch dtype
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                                  "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
#: ``--precision`` -> the autocast dtype (``None``: float32, no autocast)
PRECISIONS: dict[str, Optional[torch.dtype]] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def torch_dtype(name: str, *, what: str = "dtype") -> torch.dtype:
    """The torch dtype called ``name`` (:data:`DTYPES`); ``ValueError`` naming the choices otherwise."""
    if not isinstance(name, str) or name not in DTYPES:
        raise ValueError(f"{what} must be one of {sorted(DTYPES)} (got {name!r})")
    return DTYPES[name]


def check_device_dtype(dtype: torch.dtype, device: str) -> None:
    """``ValueError`` for float16 weights on a device without float16 kernels worth using (the CPU)."""
    if dtype == torch.float16 and not str(device).startswith(("cuda", "mps")):
        raise ValueError("float16 needs a CUDA (or MPS) device; use bfloat16 or float32 on CPU")
