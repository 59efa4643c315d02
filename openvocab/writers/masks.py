"""Mask helpers shared by the writers: RLE decoding, areas and polygons."""
from __future__ import annotations

import warnings

import numpy as np
from pycocotools import mask as mask_utils


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


def mask_to_polygons(mask: np.ndarray, *, min_points: int = 3, epsilon: float = 0.0) -> list[list[list[float]]]:
    """Outer contours of a binary mask as polygons ``[[x, y], ...]`` in pixel coordinates.

    Uses ``cv2.findContours`` (external contours, simple chain approximation); contours with fewer
    than ``min_points`` points are dropped; ``epsilon > 0`` simplifies with ``cv2.approxPolyDP``.
    Largest polygon (by contour area) first.
    """
    import cv2

    m = np.ascontiguousarray(np.asarray(mask).astype(np.uint8))
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contours = sorted(contours, key=lambda c: -cv2.contourArea(c))
    out = []
    for c in contours:
        if epsilon > 0:
            c = cv2.approxPolyDP(c, epsilon, True)
        pts = c.reshape(-1, 2)
        if len(pts) >= min_points:
            out.append([[float(x), float(y)] for x, y in pts])
    return out
