"""Safe checkpoint reading and strict loading with one clear message."""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Mapping, Optional

import torch


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model (wrong keys or shapes) or cannot be read."""


#: Harmless non-tensor objects that official training scripts save beside the weights (DETR/DINO-style
#: ``{'model', 'optimizer', 'args': argparse.Namespace, 'epoch'}``); allowed under ``weights_only=True``.
SAFE_GLOBALS = [argparse.Namespace]


def read_state_dict(path: os.PathLike | str, *, key: Optional[str] = None) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file or a torch file with ``weights_only=True``.

    ``key``: take ``obj[key]`` if the file holds a dict with it (e.g. ``'model'`` in official
    releases); a plain state_dict is returned as is.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            with torch.serialization.safe_globals(SAFE_GLOBALS):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if found:
            raise CheckpointError(
                f"{path}: cannot read checkpoint: it holds a Python object of type {found.group(1)}, which "
                "safe loading (weights_only=True) refuses. Re-save only its tensors, e.g. "
                "torch.save(torch.load(f, weights_only=False)['model'], 'weights.pth') if you trust the file"
            ) from None
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {str(e)[:500]})") from None
    if key is not None and isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
        obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a state_dict of tensors")
    return dict(obj)


def load_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                source: str = "checkpoint") -> None:
    """``model.load_state_dict(strict=True)`` with one message naming missing/unexpected/mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    if missing or unexpected or shapes:
        def fmt(keys, n=10):
            return ", ".join(keys[:n]) + (f" ... (+{len(keys) - n} more)" if len(keys) > n else "")
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {fmt(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {fmt(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches: {fmt(shapes, 5)}")
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)
