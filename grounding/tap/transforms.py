"""TAP pre- and post-processing (official numerics).

* resize: longest side to ``S`` with PIL BILINEAR (antialiased), new size ``int(h * s + 0.5)``;
* pad: bottom/right into a ``uint8`` canvas filled with the BGR mean, which truncates to
  ``(103, 116, 123)`` (padded pixels normalise to small non-zero values, unlike SAM);
* masks: bilinear (align_corners False) to ``S x S``, crop the unpadded part, bilinear to the
  original size, threshold ``> 0``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from openvocab.images import resize_bilinear


@dataclass(frozen=True)
class ResizeInfo:
    """How an original ``(H, W)`` image maps to the ``S x S`` model input.

    Attributes:
        scale: pixel scale ``s`` (original -> resized coordinates: multiply by ``s``).
        input_size: ``(h, w)`` of the resized, unpadded image (top-left of the canvas).
        original_size: ``(H, W)``.
        image_size: ``S``, the padded square side.
    """

    scale: float
    input_size: tuple[int, int]
    original_size: tuple[int, int]
    image_size: int


def compute_resize(height: int, width: int, image_size: int) -> ResizeInfo:
    """The official ``im_rescale(scales=[S], max_size=S)`` scale rule."""
    if height <= 0 or width <= 0:
        raise ValueError(f"bad image size {height}x{width}")
    scale = float(image_size) / float(min(height, width))
    if np.round(scale * max(height, width)) > image_size:
        scale = float(image_size) / float(max(height, width))
    # max(1, .) only guards degenerate strips (e.g. 1 x 5000) that would round to 0 pixels
    size = (max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5)))
    return ResizeInfo(scale=scale, input_size=size, original_size=(height, width),
                      image_size=image_size)


def resize_and_pad(image: np.ndarray, info: ResizeInfo, pad_value) -> np.ndarray:
    """``uint8 [H, W, 3]`` -> ``uint8 [S, S, 3]`` (PIL bilinear resize, pad bottom/right)."""
    h, w = info.input_size
    resized = resize_bilinear(image, h, w)
    canvas = np.empty((info.image_size, info.image_size, 3), dtype=np.uint8)
    canvas[:] = pad_value  # float mean -> uint8 truncation, as in the official im_vstack
    canvas[:h, :w] = resized
    return canvas


def postprocess_masks(mask_logits: torch.Tensor, info: ResizeInfo) -> torch.Tensor:
    """Low-res logits ``[N, h', w']`` -> float32 logits ``[N, H, W]`` at the original size."""
    x = mask_logits.float()[:, None]
    s = info.image_size
    x = F.interpolate(x, (s, s), mode="bilinear", align_corners=False)
    x = x[..., : info.input_size[0], : info.input_size[1]]
    x = F.interpolate(x, info.original_size, mode="bilinear", align_corners=False)
    return x[:, 0]
