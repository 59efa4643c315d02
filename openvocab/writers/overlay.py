"""Overlay PNGs: ``vis/<stem>.png``, the image with masks, boxes, labels and its tags.

Drawn with Pillow only: translucent masks (``mask_alpha``), box outlines, a ``"tag 0.87"`` label
on each box (then, if the mask head gave them, a line with its top region concepts,
``"concepts: dog 0.71, cat 0.12"``, and a line with its region caption) and the image-level tags, highest score
first, in a translucent panel in the top-left corner (drawn under the box labels). Each tag has a
fixed colour (from a CRC32 of its name), so the same tag looks the same on every image. Pillow's
default font is used (scalable since Pillow 10.1; the old bitmap font where FreeType is missing).
The PNG has the input image's size. On resume, overlays missing for an earlier run's images are
drawn from the input files read again.
"""
from __future__ import annotations

import colorsys
import functools
import io
import zlib
from typing import Callable, Iterable, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..registry import WRITERS
from ..structures import ImageResult
from .base import Writer, atomic_write_bytes
from .masks import decode_mask


def tag_color(name: str) -> tuple[int, int, int]:
    """A stable, saturated RGB colour for a tag name."""
    hue = (zlib.crc32(name.encode("utf-8")) % 360) / 360.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


@functools.lru_cache(maxsize=16)
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def _text_box(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int, int, int]:
    """``(width, height, dx, dy)`` of ``text``; draw at ``(x - dx, y - dy)`` to put its ink at ``(x, y)``."""
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    return x1 - x0, y1 - y0, x0, y0


@WRITERS.register_module()
class OverlayWriter(Writer):
    """Writes ``<out>/<subdir>/<stem>.png``.

    Args:
        subdir: folder inside the output folder.
        mask_alpha: mask opacity in ``[0, 1]``.
        max_tags: at most this many image-level tags in the corner panel (``0``: no panel).
        font_size: text height in pixels; ``None`` scales with the image (``max(H, W) / 70``,
            clamped to ``[10, 64]``).
        captions: draw region captions under the box labels.
        concepts: how many of each region's top concepts to draw under its label (``0``: none).
        compress_level: PNG compression level ``0..9``.
    """

    per_image = True
    needs_image = True

    def __init__(self, *, subdir: str = "vis", mask_alpha: float = 0.45, max_tags: int = 20,
                 font_size: Optional[int] = None, captions: bool = True, concepts: int = 2,
                 compress_level: int = 3) -> None:
        super().__init__()
        if not subdir:
            raise ValueError("subdir must be a non-empty folder name")
        if not 0.0 <= mask_alpha <= 1.0:
            raise ValueError(f"mask_alpha must be in [0, 1], got {mask_alpha}")
        if max_tags < 0:
            raise ValueError(f"max_tags must be >= 0, got {max_tags}")
        if font_size is not None and font_size < 1:
            raise ValueError(f"font_size must be >= 1, got {font_size}")
        if concepts < 0:
            raise ValueError(f"concepts must be >= 0, got {concepts}")
        if not 0 <= compress_level <= 9:
            raise ValueError(f"compress_level must be in 0..9, got {compress_level}")
        self.subdir = subdir
        self.mask_alpha = float(mask_alpha)
        self.max_tags = int(max_tags)
        self.font_size = font_size
        self.captions = bool(captions)
        self.concepts = int(concepts)
        self.compress_level = int(compress_level)

    @property
    def root(self):
        return self.out_dir / self.subdir

    def _open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, result: ImageResult):
        return self.root / f"{self.name_of(result)}.png"

    def finish(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        load = self.context.load_image
        for r in results():  # images finished by an earlier run: overlays it lacks are drawn, if readable
            if load is not None and not self._path(r).exists():
                image = load(r.image.file)
                if image is not None:
                    self.write(r, image)
        super().finish(results)

    def render(self, result: ImageResult, image: np.ndarray) -> Image.Image:
        """The overlay of one image (RGB, same size as ``image``)."""
        img = np.asarray(image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"image must be uint8 [H, W, 3], got {img.dtype} {img.shape}")
        h, w = img.shape[:2]
        if (w, h) != (result.image.width, result.image.height):
            raise ValueError(f"{result.image.file}: image is {w}x{h} but the result says "
                             f"{result.image.width}x{result.image.height}")
        dets, regions = result.detections, result.regions
        canvas = img.copy()
        if regions is not None and self.mask_alpha > 0:
            for i in range(len(regions)):
                m = decode_mask(regions.masks[i])
                if m.shape != (h, w):
                    raise ValueError(f"{result.image.file}: mask {i} is {m.shape[::-1]} for a {w}x{h} image")
                color = np.asarray(tag_color(dets.labels[i]), np.float32)
                ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
                if len(ys):  # blend inside the mask's bounding box only
                    win = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
                    sub, mm = canvas[win], m[win]
                    blended = sub[mm].astype(np.float32) * (1.0 - self.mask_alpha) + color * self.mask_alpha
                    sub[mm] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        base = Image.fromarray(canvas).convert("RGBA")
        layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        size = self.font_size or int(min(max(round(max(h, w) / 70), 10), 64))
        font = _font(size)
        line_w = max(1, round(max(h, w) / 400))
        pad = max(1, size // 5)
        tags = list(result.tags)[: self.max_tags]
        if tags:
            texts = [f"{t.name} {t.score:.2f}" for t in tags]
            boxes = [_text_box(draw, t, font) for t in texts]
            line_h = max(b[1] + b[3] for b in boxes) + pad
            panel_w = max(b[0] for b in boxes) + 2 * pad
            draw.rectangle([0, 0, panel_w, len(texts) * line_h + pad], fill=(0, 0, 0, 150))
            for k, (text, (_, _, dx, _)) in enumerate(zip(texts, boxes)):
                draw.text((pad - dx, pad + k * line_h), text, font=font, fill=(255, 255, 255, 255), anchor="la")
        for i in range(len(dets)):  # boxes after the tag panel: their labels stay readable
            x1, y1, x2, y2 = (float(v) for v in dets.boxes[i])
            color = tag_color(dets.labels[i])
            draw.rectangle([x1, y1, max(x1, x2), max(y1, y2)], outline=color + (255,), width=line_w)
            lines = [f"{dets.labels[i]} {float(dets.scores[i]):.2f}"]
            if self.concepts and regions is not None and regions.concepts is not None and regions.concepts[i]:
                top = regions.concepts[i][: self.concepts]
                lines.append("concepts: " + ", ".join(f"{c.name} {float(c.score):.2f}" for c in top))
            if self.captions and regions is not None and regions.captions is not None and regions.captions[i]:
                lines.append(regions.captions[i])
            boxes = [_text_box(draw, t, font) for t in lines]
            block_h = sum(b[1] + 2 * pad for b in boxes)
            tx = min(max(x1, 0), max(w - max(b[0] for b in boxes) - 2 * pad, 0))
            ty = y1 - block_h if y1 - block_h >= 0 else max(y1, 0)
            for text, (tw, th, dx, dy) in zip(lines, boxes):
                draw.rectangle([tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad], fill=color + (200,))
                draw.text((tx + pad - dx, ty + pad - dy), text, font=font, fill=(0, 0, 0, 255), anchor="la")
                ty += th + 2 * pad
        return Image.alpha_composite(base, layer).convert("RGB")

    def write(self, result: ImageResult, image: Optional[np.ndarray]) -> None:
        self._check_open(result)
        if image is None:
            raise ValueError(f"{result.image.file}: OverlayWriter needs the image pixels")
        buf = io.BytesIO()
        self.render(result, image).save(buf, "PNG", compress_level=self.compress_level)
        atomic_write_bytes(self._path(result), buf.getvalue())
