"""COCO run-length encoding of binary masks (pycocotools), shared by mask heads and writers."""
from __future__ import annotations

import warnings

import numpy as np
from pycocotools import mask as mask_utils


def encode_mask(mask: np.ndarray) -> dict:
    """``bool/uint8 [H, W]`` -> COCO RLE ``{"size": [H, W], "counts": str}`` (JSON-safe)."""
    if mask.ndim != 2:
        raise ValueError(f"encode_mask expects a 2-D mask, got shape {mask.shape}")
    raw = mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8)  # bool is a byte: no copy
    rle = mask_utils.encode(np.asfortranarray(raw))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _rle(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_mask(rle: dict) -> np.ndarray:
    """COCO RLE -> ``bool [H, W]``."""
    with warnings.catch_warnings():  # pycocotools' own __array__ vs NumPy 2 deprecation, harmless
        warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
        return mask_utils.decode(_rle(rle)).astype(bool)


def mask_area(rle: dict) -> int:
    """Number of foreground pixels of a COCO RLE."""
    return int(mask_utils.area(_rle(rle)))


def mask_box(mask: np.ndarray) -> np.ndarray:
    """The bounding box ``float32 [4]`` xyxy (pixel edges: a one-pixel mask at (x, y) gives
    ``[x, y, x + 1, y + 1]``) of a ``bool [H, W]`` mask; all zeros for an empty mask."""
    if mask.ndim != 2:
        raise ValueError(f"mask_box expects a 2-D mask, got shape {mask.shape}")
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return np.zeros(4, np.float32)
    return np.asarray([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)
