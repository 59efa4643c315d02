"""Official Grounding DINO preprocessing: RandomResize([800], max_size=1333) on PIL, ToTensor,
Normalize, and batching with zero padding + padding masks (True = padding)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from openvocab.images import resize_bilinear

from .weights import INPUT_MAX, INPUT_SHORT, MEAN, STD


def resized_hw(h: int, w: int, size: int = INPUT_SHORT, max_size: int | None = INPUT_MAX) -> tuple[int, int]:
    """Output (h, w) of the official ``get_size_with_aspect_ratio`` (Python round, half to even)."""
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    if max_size is not None:
        mn, mx = float(min(h, w)), float(max(h, w))
        if mx / mn * size > max_size:
            size = int(round(max_size * mn / mx))
    if (w <= h and w == size) or (h <= w and h == size):
        return h, w
    # max(1, .) only guards degenerate strips (e.g. 1 x 50000), which the official code turns into 0 pixels
    if w < h:
        return max(1, int(size * h / w)), max(1, size)
    return max(1, size), max(1, int(size * w / h))


def resize_image(image: Image.Image | np.ndarray, size: int = INPUT_SHORT,
                 max_size: int | None = INPUT_MAX) -> Image.Image:
    """Resize an RGB image like the official transform (PIL bilinear; untouched if already sized)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("expected an HxWx3 uint8 RGB array")
        oh, ow = resized_hw(image.shape[0], image.shape[1], size, max_size)
        return Image.fromarray(image if (oh, ow) == image.shape[:2] else resize_bilinear(image, oh, ow))
    if not isinstance(image, Image.Image):
        raise ValueError(f"expected a PIL image or uint8 array, got {type(image).__name__}")
    image = image.convert("RGB")
    w, h = image.size
    oh, ow = resized_hw(h, w, size, max_size)
    if (oh, ow) == (h, w):
        return image
    return Image.fromarray(resize_bilinear(np.asarray(image), oh, ow))


def to_normalized_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float32 [3,H,W], (x/255 - mean)/std in float32."""
    arr = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    x = arr.to(torch.float32).div(255)
    mean = torch.tensor(MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(STD, dtype=torch.float32)[:, None, None]
    return (x - mean) / std


@dataclass
class ImageBatch:
    """Padded network input.

    Attributes:
        pixel_values: float32 [B,3,Hmax,Wmax], normalised, zero padded at bottom/right.
        pixel_mask: bool [B,Hmax,Wmax], True on padding.
        input_sizes: (h, w) of each resized, unpadded image.
        original_sizes: (h, w) of each original image (pixels), for rescaling boxes.
    """

    pixel_values: torch.Tensor
    pixel_mask: torch.Tensor
    input_sizes: list[tuple[int, int]]
    original_sizes: list[tuple[int, int]]


def pad_batch(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad [3,H,W] tensors to the batch max; mask True on padding (nested_tensor_from_tensor_list)."""
    if len(tensors) == 0:
        raise ValueError("empty batch")
    hmax = max(t.shape[1] for t in tensors)
    wmax = max(t.shape[2] for t in tensors)
    out = tensors[0].new_zeros((len(tensors), 3, hmax, wmax))
    mask = torch.ones((len(tensors), hmax, wmax), dtype=torch.bool)
    for i, t in enumerate(tensors):
        out[i, :, : t.shape[1], : t.shape[2]] = t
        mask[i, : t.shape[1], : t.shape[2]] = False
    return out, mask


def preprocess_images(images: Sequence[Image.Image | np.ndarray], size: int = INPUT_SHORT,
                      max_size: int | None = INPUT_MAX) -> ImageBatch:
    """Resize, normalise and pad a list of RGB images."""
    tensors, in_sizes, orig = [], [], []
    for im in images:
        if isinstance(im, np.ndarray):
            orig.append((int(im.shape[0]), int(im.shape[1])))
        elif isinstance(im, Image.Image):
            orig.append((im.size[1], im.size[0]))
        else:
            raise ValueError(f"expected a PIL image or uint8 array, got {type(im).__name__}")
        r = resize_image(im, size, max_size)
        t = to_normalized_tensor(r)
        tensors.append(t)
        in_sizes.append((t.shape[1], t.shape[2]))
    pv, pm = pad_batch(tensors)
    return ImageBatch(pixel_values=pv, pixel_mask=pm, input_sizes=in_sizes, original_sizes=orig)
