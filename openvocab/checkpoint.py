"""Safe checkpoint reading and strict loading with one clear message."""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model (wrong keys or shapes) or cannot be read."""


#: Harmless non-tensor objects that official training scripts save beside the weights (DETR/DINO-style
#: ``{'model', 'optimizer', 'args': argparse.Namespace, 'epoch'}``); allowed under ``weights_only=True``.
SAFE_GLOBALS = [argparse.Namespace]


def _refusal(path: Path, e: Exception) -> CheckpointError:
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
    if found:
        return CheckpointError(
            f"{path}: cannot read checkpoint: it holds a Python object of type {found.group(1)}, which "
            "safe loading (weights_only=True) refuses. Re-save only its tensors, e.g. "
            "torch.save(torch.load(f, weights_only=False)['model'], 'weights.pth') if you trust the file")
    return CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {' '.join(str(e).split())[:500]})")


def read_checkpoint(path: os.PathLike | str, *, map_location: Any = "cpu", safe_globals: Sequence = ()) -> Any:
    """Whatever a torch checkpoint file holds (e.g. a training checkpoint with optimizer state), read with
    ``weights_only=True``: tensors, plain containers, :data:`SAFE_GLOBALS` and ``safe_globals``
    (entries as :func:`torch.serialization.safe_globals` takes them); any other object is refused with
    one :class:`CheckpointError` naming the file and the object's type."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals([*SAFE_GLOBALS, *safe_globals]):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise _refusal(path, e) from None


#: first bytes of the files ``torch.save`` writes: a zip archive (torch >= 1.6) or a bare pickle
_TORCH_MAGIC = ((b"PK\x03\x04", "a zip archive (what torch.save writes)"),
                (b"\x80", "a Python pickle (what older torch.save writes)"))


def safetensors_error(path: os.PathLike | str, e: Exception) -> CheckpointError:
    """The one message for a ``.safetensors`` file that safetensors cannot read (``e``), saying what the
    file is when it is in fact a torch checkpoint or a pickle (which is never unpickled here)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        head = b""
    for magic, what in _TORCH_MAGIC:
        if head.startswith(magic):
            return CheckpointError(
                f"{path}: not a safetensors file but {what}, under a .safetensors name; rename it to .pth to "
                "read it as a torch checkpoint (with weights_only=True)")
    return CheckpointError(f"{path}: not a valid safetensors file ({type(e).__name__}: {str(e)[:300]})")


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:
        raise safetensors_error(path, e) from None


def read_state_dict(path: os.PathLike | str, *, key: Optional[str] = None) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file or a torch file with ``weights_only=True``.

    ``key``: take ``obj[key]`` if the file holds a dict with it (e.g. ``'model'`` in official
    releases); a plain state_dict is returned as is.
    """
    path = Path(path)
    obj = _read_safetensors(path) if path.suffix == ".safetensors" else read_checkpoint(path)
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
