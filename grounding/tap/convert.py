"""Official TAP checkpoint -> this implementation's state_dict.

The modules here use the official parameter names, so conversion is key-preserving: numpy arrays
become tensors, and the non-persistent bookkeeping the official loader tolerates is normalised.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
import torch

from openvocab.checkpoint import CheckpointError, read_state_dict

from .safe_pickle import UnsafePickleError, safe_load


def convert_state_dict(sd: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Official ``{key: numpy array | tensor}`` -> ``{key: tensor}`` (same keys, same dtypes)."""
    out = {}
    for k, v in sd.items():
        if isinstance(v, np.ndarray):
            # keep 0-d arrays 0-d (np.ascontiguousarray would make them 1-d)
            v = torch.from_numpy(v if v.flags.c_contiguous and v.flags.writeable else np.array(v, order="C"))
        elif isinstance(v, (np.generic, int, float)):
            v = torch.as_tensor(np.asarray(v))
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"checkpoint entry {k!r} is a {type(v).__name__}, not an array")
        out[str(k)] = v
    return out


def read_tap_checkpoint(path: os.PathLike | str) -> dict[str, torch.Tensor]:
    """Read an official ``.pkl`` (restricted unpickler) or a ``.pt``/``.safetensors`` state_dict."""
    path = str(path)
    if path.endswith(".pkl"):
        try:
            obj = safe_load(path)
        except UnsafePickleError as e:
            raise CheckpointError(f"{path}: refused to unpickle ({e})") from None
        except Exception as e:
            raise CheckpointError(f"{path}: cannot read pickle ({type(e).__name__}: {e})") from None
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{path}: expected a dict of arrays, got {type(obj).__name__}")
        return convert_state_dict(obj)
    return convert_state_dict(read_state_dict(path, key="state_dict"))
