"""Loading one image safely (turning command-line inputs into files: :mod:`openvocab.inputs`).

:func:`load_image` returns the displayed image (EXIF orientation applied) as RGB
``uint8`` and raises :class:`ImageLoadError` for anything it cannot turn into such an image.

Pixel conversions done by :func:`load_image`:

* ``RGBA``, ``LA``, ``PA`` and palette images with transparency: alpha is composited **on white**
  (a transparent background becomes white, as image viewers show it);
* ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``P``, ``L``, ``1``: converted to RGB by Pillow;
* 16-bit gray (``I;16*``): scaled to 8 bits by ``round(v / 257)`` (65535 -> 255); 16-bit RGB(A)
  PNG/TIFF are reduced to 8 bits by Pillow's decoder itself (the high byte, ``v >> 8``);
* 32-bit integer ``I``: values in ``[0, 65535]`` are treated as 16-bit (as above), any other range
  is stretched linearly from its min..max to 0..255; float ``F``: ``[0, 1]`` is scaled by 255,
  anything else is stretched from min..max;
* multi-frame files (GIF, TIFF): the first frame.

Files that fail: missing/unreadable, zero bytes, not an image, truncated or corrupt data (Pillow's
``LOAD_TRUNCATED_IMAGES`` is left off), and images with more than ``max_pixels`` pixels
(decompression bombs; only the header is read for those, never the pixels).
"""
from __future__ import annotations

import os
import threading
import warnings
from typing import Optional

import numpy as np
from PIL import Image, ImageOps

from .inputs import IMAGE_EXTENSIONS, expand_inputs, is_image_file  # noqa: F401  (re-exported)
from .structures import ImageInfo

#: Default pixel limit: Pillow's own decompression-bomb threshold (about 89.5 megapixels).
DEFAULT_MAX_PIXELS = 89_478_485

_PIL_LIMIT_LOCK = threading.Lock()


class ImageLoadError(Exception):
    """An input that could not be loaded as an image. ``str(e)`` is ``"<file>: <message>"``."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.message = message


def _without_path(message: str, path: str) -> str:
    """A library's error message without the file's path (the failure is reported as ``"<file>: <message>"``)."""
    for spelled in (repr(path), f'"{path}"', path):
        message = message.replace(spelled, "the file")
    return message


# --------------------------------------------------------------------------- resizing


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``uint8 [H, W, C]`` -> ``uint8 [height, width, C]``: Pillow's ``BILINEAR`` resize (antialiased
    when shrinking), with the same pixels whatever Pillow is installed.

    Pillow resizes in two separable passes and rounds to ``uint8`` in between, so the pass order
    changes pixels. Pillow >= 13 runs the vertical pass first when the height shrinks by more than
    twice as many pixels as the width (older versions always start horizontally). This function runs
    the two passes itself, as single-axis resizes, in Pillow 13's order: models' preprocessing (and
    so labels and parity with the official code run on Pillow 13) do not depend on the Pillow version.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 image [H, W] or [H, W, C], got {getattr(image, 'dtype', type(image))}")
    if height < 1 or width < 1:
        raise ValueError(f"cannot resize to {height} x {width} pixels")
    h, w = image.shape[:2]
    pil = Image.fromarray(np.ascontiguousarray(image))
    vertical_first = (h - height) > 0 and (h - height) > 2 * (w - width)
    steps = [(w, height), (width, height)] if vertical_first else [(width, h), (width, height)]
    for size in steps:
        if pil.size != size:
            pil = pil.resize(size, Image.BILINEAR)
    return np.asarray(pil)


# --------------------------------------------------------------------------- loading


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> ``uint8 [H, W, 3]`` RGB (see the module docstring for the rules)."""
    mode = im.mode
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode.startswith("I;16") or mode == "I" or mode == "F":
        a = np.asarray(im)
        if a.ndim != 2:
            raise ValueError(f"unsupported {mode} image layout {a.shape}")
        a = a.astype(np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if mode.startswith("I;16") or (mode == "I" and lo >= 0 and hi <= 65535):
            g = np.rint(a / 257.0)
        elif mode == "F" and lo >= 0 and hi <= 1:
            g = np.rint(a * 255.0)
        else:
            g = np.rint((a - lo) * 255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        g = np.clip(g, 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def pil_to_rgb(im: Image.Image, *, in_place: bool = False) -> np.ndarray:
    """A loaded Pillow image as displayed: EXIF orientation applied (broken EXIF: the stored orientation), then
    ``uint8 [H, W, 3]`` RGB by the rules of the module docstring. ``in_place``: turn ``im`` itself (no copy of
    the pixels when there is nothing to turn, as for most photos); else ``im`` is left as it is."""
    try:
        if in_place:
            ImageOps.exif_transpose(im, in_place=True)
        else:
            im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - broken EXIF: keep the stored orientation
        pass
    return np.ascontiguousarray(_to_rgb(im))


def _open_checked(path: str, max_pixels: int) -> Image.Image:
    """``Image.open`` (header only) with our own pixel limit instead of Pillow's global one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if max_pixels <= 2 * (Image.MAX_IMAGE_PIXELS or 0):
                im = Image.open(path)
            else:  # a limit above Pillow's hard one: lift Pillow's for this open only
                with _PIL_LIMIT_LOCK:
                    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                    try:
                        im = Image.open(path)
                    finally:
                        Image.MAX_IMAGE_PIXELS = saved
    except Image.DecompressionBombError as e:
        raise ImageLoadError(path, f"image too large, refused as a possible decompression bomb ({e}); "
                                   f"limit is {max_pixels} pixels (--max-pixels)") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise ImageLoadError(path, f"image too large: {w}x{h} = {w * h} pixels exceeds the limit of "
                                   f"{max_pixels} pixels (possible decompression bomb; raise --max-pixels)")
    return im


def load_image(path: str, *, max_pixels: Optional[int] = None) -> tuple[np.ndarray, ImageInfo]:
    """Load one image as displayed.

    Args:
        path: the image file.
        max_pixels: refuse images with more pixels than this (checked from the header, before any
            pixel is decoded); ``None`` means :data:`DEFAULT_MAX_PIXELS`.

    Returns:
        ``(image, info)``: ``uint8 [H, W, 3]`` RGB after EXIF orientation, and its
        :class:`ImageInfo` (``file=path``, displayed ``width``/``height``).

    Raises:
        ImageLoadError: the file is missing, empty, not an image, truncated, corrupt or too large.
        ValueError: ``max_pixels`` is not a positive integer.
    """
    path = os.fspath(path)
    if max_pixels is None:
        max_pixels = DEFAULT_MAX_PIXELS
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    if os.path.isdir(path):
        raise ImageLoadError(path, "is a folder, not an image file")
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise ImageLoadError(path, f"cannot read file: {e.strerror or e}") from None
    if size == 0:
        raise ImageLoadError(path, "empty file (0 bytes)")
    try:
        im = _open_checked(path, int(max_pixels))
    except ImageLoadError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageLoadError(path, "not an image, or an image format Pillow cannot read") from None
    except Exception as e:  # noqa: BLE001 - any decoder failure becomes a listed failure
        raise ImageLoadError(path, f"cannot open image: {type(e).__name__}: {_without_path(str(e), path)}") from None
    try:
        with im:
            fmt = im.format or "image"
            im.load()  # raises on truncated / corrupt data (LOAD_TRUNCATED_IMAGES is off)
            rgb = pil_to_rgb(im, in_place=True)
    except MemoryError:
        raise ImageLoadError(path, "out of memory while decoding the image") from None
    except Exception as e:  # noqa: BLE001
        msg = _without_path(str(e), path) or type(e).__name__
        if "truncated" in msg.lower():
            raise ImageLoadError(path, f"truncated {fmt} file ({msg})") from None
        raise ImageLoadError(path, f"corrupt {fmt} data: {type(e).__name__}: {msg}") from None
    h, w = rgb.shape[:2]
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or h < 1 or w < 1:
        raise ImageLoadError(path, f"unsupported image layout {rgb.shape} {rgb.dtype}")
    return rgb, ImageInfo(file=path, width=int(w), height=int(h))
