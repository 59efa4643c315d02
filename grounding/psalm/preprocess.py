"""PSALM's input pipeline (the official detectron2 mappers, without detectron2).

The image is resized so its longer side is S (``ResizeShortestEdge(S, max_size=S)``: PIL bilinear on uint8,
sizes rounded with ``int(x + 0.5)``), padded bottom/right with 128 to S x S (``FixedSizeCrop``), and normalised
with RGB mean/std in 0-255 units. A visual prompt is a mask drawn in original-image pixels (a box: filled
rectangle; a point: a disc of radius 10), resized like the image with nearest neighbour and padded with 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

#: the official radius (original-image pixels) a point prompt is enlarged to
POINT_RADIUS = 10


def resized_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(h, w)`` after detectron2's ``ResizeShortestEdge(size, max_size=size)``: the longer side becomes ``size``."""
    scale = size / min(height, width)
    newh, neww = (size, scale * width) if height < width else (scale * height, size)
    if max(newh, neww) > size:
        scale = size / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


@dataclass(frozen=True)
class PreparedImage:
    """One image ready for the model.

    Attributes:
        pixels: ``float32 [3, S, S]`` normalised, padded.
        resized_hw: the image's size inside the padded square.
        original_hw: the original image's size (outputs are at this size).
    """

    pixels: torch.Tensor
    resized_hw: tuple[int, int]
    original_hw: tuple[int, int]


def resize_pad(image: np.ndarray, size: int, *, pad_value: float = 128.0,
               resample=Image.BILINEAR) -> tuple[np.ndarray, tuple[int, int]]:
    """``uint8 [H, W(, 3)]`` -> (``[S, S(, 3)]`` resized and padded bottom/right, resized ``(h, w)``)."""
    h, w = resized_size(image.shape[0], image.shape[1], size)
    resized = np.asarray(Image.fromarray(image).resize((w, h), resample))
    out = np.full((size, size) + image.shape[2:], pad_value, dtype=image.dtype)
    out[:h, :w] = resized
    return out, (h, w)


def preprocess_image(image: np.ndarray, *, size: int, mean: Sequence[float], std: Sequence[float],
                     pad_value: float = 128.0) -> PreparedImage:
    """RGB ``uint8 [H, W, 3]`` -> :class:`PreparedImage`."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    padded, hw = resize_pad(image, size, pad_value=pad_value)
    x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))).float()
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return PreparedImage(pixels=(x - m) / s, resized_hw=hw, original_hw=(image.shape[0], image.shape[1]))


def box_mask(box: Sequence[float], height: int, width: int) -> np.ndarray:
    """A filled rectangle ``uint8 [H, W]`` for an xyxy box in pixel edges (rows ``round(y1)..round(y2)-1``), at
    least one pixel, clipped to the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    c1, c2 = sorted((int(np.clip(round(x1), 0, width - 1)), int(np.clip(round(x2), 0, width))))
    r1, r2 = sorted((int(np.clip(round(y1), 0, height - 1)), int(np.clip(round(y2), 0, height))))
    m = np.zeros((height, width), np.uint8)
    m[r1:max(r2, r1 + 1), c1:max(c2, c1 + 1)] = 1
    return m


def disc_mask(points_xy: np.ndarray, height: int, width: int, radius: int = POINT_RADIUS) -> np.ndarray:
    """Discs of ``radius`` around the pixels holding ``points_xy [P, 2]`` (official ``enhance_with_circles``:
    ``distance <= radius`` on the pixel grid) -> ``uint8 [H, W]``."""
    m = np.zeros((height, width), np.uint8)
    for x, y in np.asarray(points_xy, dtype=np.float64).reshape(-1, 2):
        col = int(np.clip(np.floor(x), 0, width - 1))
        row = int(np.clip(np.floor(y), 0, height - 1))
        r0, r1 = max(row - radius, 0), min(row + radius + 1, height)
        c0, c1 = max(col - radius, 0), min(col + radius + 1, width)
        yy, xx = np.ogrid[r0:r1, c0:c1]
        m[r0:r1, c0:c1][np.sqrt((xx - col) ** 2 + (yy - row) ** 2) <= radius] = 1
    return m


def prompt_masks_original(*, boxes: Optional[np.ndarray], points: Optional[np.ndarray],
                          point_labels: Optional[np.ndarray], original_hw: tuple[int, int],
                          point_radius: int = POINT_RADIUS) -> list[np.ndarray]:
    """One prompt mask per prompt row in original pixels: the box when given, else the foreground points'
    discs (PSALM has no background points: labels 0 and -1 are ignored). A prompt with neither is a ValueError."""
    h, w = original_hw
    n = len(boxes) if boxes is not None else len(points)
    out = []
    for i in range(n):
        if boxes is not None:
            out.append(box_mask(boxes[i], h, w))
            continue
        fg = points[i][np.asarray(point_labels[i]) == 1]
        if len(fg) == 0:
            raise ValueError(f"prompt {i} has no foreground point (label 1): PSALM has no background points")
        out.append(disc_mask(fg, h, w, point_radius))
    return out


def transform_prompt_mask(mask: np.ndarray, size: int) -> torch.Tensor:
    """An original-size prompt mask -> ``bool [S, S]`` (nearest resize like the image, zero padding). A mask that
    vanishes in the resize keeps the pixel of its centre."""
    out, (h, w) = resize_pad(np.ascontiguousarray(mask, dtype=np.uint8), size, pad_value=0, resample=Image.NEAREST)
    if not out.any():
        rows, cols = np.nonzero(mask)
        if len(rows) == 0:
            raise ValueError("a region prompt mask is empty")
        sy, sx = h / mask.shape[0], w / mask.shape[1]
        out[min(int(rows.mean() * sy), h - 1), min(int(cols.mean() * sx), w - 1)] = 1
    return torch.from_numpy(out.astype(bool))
