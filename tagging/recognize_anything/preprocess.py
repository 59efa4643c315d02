"""RAM / RAM++ / Tag2Text preprocessing from raw images, matching the official ``get_transform``.

RGB -> resize to ``S x S`` ignoring the aspect ratio (Pillow BILINEAR on uint8, which antialiases
when downscaling, as torchvision's ``Resize`` on a PIL image does) -> ``/255`` -> ImageNet
mean/std normalisation. Output: ``float32 [B, 3, S, S]``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from openvocab.images import resize_bilinear

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """``uint8 [H, W]`` grey, ``[H, W, 1]``, ``[H, W, 3]`` RGB or ``[H, W, 4]`` RGBA -> ``[H, W, 3]`` RGB.

    As the official ``PIL.Image.convert("RGB")``: grey is repeated, alpha is dropped.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3) \
            or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        got = f"{image.dtype} {list(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected a uint8 image [H, W], [H, W, 3] (RGB) or [H, W, 4] (RGBA), got {got}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image {list(image.shape)}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def resize_uint8(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 image (see :func:`to_rgb_uint8`) -> ``uint8 [size, size, 3]`` RGB (Pillow bilinear with
    antialias, ignoring the aspect ratio; the same pixels on every Pillow version, see
    :func:`openvocab.images.resize_bilinear`)."""
    return resize_bilinear(to_rgb_uint8(image), size, size)


def preprocess(images: Sequence[np.ndarray], *, image_size: int,
               mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """Batch of uint8 ``[H, W, 3]`` RGB (or grey / RGBA, see :func:`to_rgb_uint8`) images ->
    normalised ``float32 [B, 3, S, S]`` (CPU)."""
    if len(images) == 0:
        raise ValueError("no images to preprocess")
    return normalize([resize_uint8(im, image_size) for im in images], mean=mean, std=std)


def normalize(resized: Sequence[np.ndarray], *, mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """:func:`resize_uint8` outputs ``uint8 [S, S, 3]`` -> normalised ``float32 [B, 3, S, S]`` (CPU)."""
    if len(resized) == 0:
        raise ValueError("no images to preprocess")
    x = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float().div(255)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub(m).div(s)
