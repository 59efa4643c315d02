"""Mask helpers shared by the writers: polygons (RLE encode/decode/area live in :mod:`openvocab.masks`)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..masks import decode_mask, encode_mask, mask_area  # noqa: F401  (re-exported)


def mask_to_polygons(mask: np.ndarray, *, min_points: int = 3, epsilon: float = 0.0,
                     max_points: Optional[int] = None) -> list[list[list[float]]]:
    """Outer contours of a binary mask as polygons ``[[x, y], ...]`` in pixel coordinates.

    Uses ``cv2.findContours`` (external contours, simple chain approximation); contours with fewer
    than ``min_points`` points are dropped; ``epsilon > 0`` simplifies with ``cv2.approxPolyDP``
    (Douglas-Peucker: no point of the contour farther than ``epsilon`` pixels from the polygon);
    ``max_points``: a polygon still longer is simplified again with a doubled tolerance until it fits.
    Largest polygon (by contour area) first.
    """
    if max_points is not None and max_points < max(min_points, 3):
        raise ValueError(f"max_points must be >= {max(min_points, 3)}, got {max_points}")
    import cv2

    m = np.ascontiguousarray(np.asarray(mask).astype(np.uint8))
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contours = sorted(contours, key=lambda c: -cv2.contourArea(c))
    out = []
    for c in contours:
        simple, eps = (cv2.approxPolyDP(c, epsilon, True) if epsilon > 0 else c), max(epsilon, 0.5)
        while max_points is not None and len(simple) > max_points:
            eps *= 2
            simple = cv2.approxPolyDP(c, eps, True)
        pts = simple.reshape(-1, 2)
        if len(pts) >= min_points:
            out.append([[float(x), float(y)] for x, y in pts])
    return out
