"""Overlay pictures: ``vis/<stem>.jpg``, the image with masks, boxes, labels and its tags.

Drawn with Pillow only: translucent masks (``mask_alpha``), box outlines, a ``"tag 0.87"`` label
for each box (then, if the mask head gave them, a line with its top region concepts,
``"concepts: dog 0.71, cat 0.12"``, and a line with its region caption) and the image-level tags, highest
score first, in a translucent panel in the top-left corner. Labels never cover each other or the tag
panel (:class:`~.label_layout.LabelLayout`: next to their box when there is room, else in the nearest
free place with a thin line to the box; higher scores are placed first, and a label that fits nowhere
is left out). Each tag has a fixed colour (from a CRC32 of its name), so the same tag looks the same on
every image. Pillow's default font is used (scalable since Pillow 10.1; the old bitmap font where
FreeType is missing).

By default the picture is a JPEG (quality 90) whose longer side is at most 2048 pixels (a 13.8 MP photo:
about 0.5 MB instead of a 10 MB full-size PNG); ``format='png'`` and ``max_side=None`` give a lossless
full-size picture. On resume, overlays missing for an earlier run's images are drawn from the input
files read again.
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
from .base import Writer, atomic_write_bytes, make_dirs, plain_name
from .label_layout import LabelLayout
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
    """Writes ``<out>/<subdir>/<stem>.jpg`` (or ``.png``).

    Args:
        subdir: folder inside the output folder.
        mask_alpha: mask opacity in ``[0, 1]``.
        max_tags: at most this many image-level tags in the corner panel (``0``: no panel).
        font_size: text height in pixels of the written picture; ``None`` scales with it (``max(H, W) / 70``,
            clamped to ``[10, 64]``).
        captions: draw region captions under the box labels, and the image's caption (a captioner's) in a strip
            along the bottom edge.
        concepts: how many of each region's top concepts to draw under its label (``0``: none).
        format: ``"jpg"`` or ``"png"``.
        quality: JPEG quality ``1..95``.
        max_side: the written picture's longer side at most (downscaled; ``None``: the image's size).
        compress_level: PNG compression level ``0..9``.
    """

    per_image = True
    needs_image = True

    def __init__(self, *, subdir: str = "vis", mask_alpha: float = 0.45, max_tags: int = 20,
                 font_size: Optional[int] = None, captions: bool = True, concepts: int = 2, format: str = "jpg",
                 quality: int = 90, max_side: Optional[int] = 2048, compress_level: int = 3) -> None:
        super().__init__()
        plain_name(subdir, "subdir")
        if not 0.0 <= mask_alpha <= 1.0:
            raise ValueError(f"mask_alpha must be in [0, 1], got {mask_alpha}")
        if max_tags < 0:
            raise ValueError(f"max_tags must be >= 0, got {max_tags}")
        if font_size is not None and font_size < 1:
            raise ValueError(f"font_size must be >= 1, got {font_size}")
        if concepts < 0:
            raise ValueError(f"concepts must be >= 0, got {concepts}")
        if format not in ("jpg", "png"):
            raise ValueError(f"format must be 'jpg' or 'png', got {format!r}")
        if not 1 <= quality <= 95:
            raise ValueError(f"quality must be in 1..95, got {quality}")
        if max_side is not None and max_side < 16:
            raise ValueError(f"max_side must be >= 16 or None, got {max_side}")
        if not 0 <= compress_level <= 9:
            raise ValueError(f"compress_level must be in 0..9, got {compress_level}")
        self.subdir = subdir
        self.mask_alpha = float(mask_alpha)
        self.max_tags = int(max_tags)
        self.font_size = font_size
        self.captions = bool(captions)
        self.concepts = int(concepts)
        self.format, self.quality, self.max_side = format, int(quality), max_side
        self.compress_level = int(compress_level)
        #: label rectangles of the last rendered picture (det index -> (x1, y1, x2, y2)) and the tag panel's
        self.last_labels: dict[int, tuple[float, float, float, float]] = {}
        self.last_panel: Optional[tuple[float, float, float, float]] = None
        #: the image caption's strip of the last rendered picture (``None``: no caption)
        self.last_caption: Optional[tuple[float, float, float, float]] = None

    @property
    def root(self):
        return self.out_dir / self.subdir

    def _open(self) -> None:
        make_dirs(self.out_dir, self.subdir)

    def _path(self, result: ImageResult):
        return self.root / f"{self.name_of(result)}.{self.format}"

    def finish(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        load = self.context.load_image
        for r in results():  # images finished by an earlier run: overlays it lacks are drawn, if readable
            if load is not None and not self._path(r).exists():
                image = load(r.image.file)
                if image is not None:
                    self.write(r, image)
        super().finish(results)

    def render(self, result: ImageResult, image: np.ndarray) -> Image.Image:
        """The overlay of one image (RGB; the image's size, or smaller to fit ``max_side``)."""
        img = np.asarray(image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"image must be uint8 [H, W, 3], got {img.dtype} {img.shape}")
        h0, w0 = img.shape[:2]
        if (w0, h0) != (result.image.width, result.image.height):
            raise ValueError(f"{result.image.file}: image is {w0}x{h0} but the result says "
                             f"{result.image.width}x{result.image.height}")
        scale = min(1.0, self.max_side / max(h0, w0)) if self.max_side else 1.0
        w, h = (max(1, round(w0 * scale)), max(1, round(h0 * scale))) if scale < 1 else (w0, h0)
        canvas = np.array(Image.fromarray(img).resize((w, h), Image.BILINEAR, reducing_gap=3.0)) if scale < 1 \
            else img.copy()
        dets, regions = result.detections, result.regions
        if regions is not None and self.mask_alpha > 0:
            for i in range(len(regions)):
                m = decode_mask(regions.masks[i])
                if m.shape != (h0, w0):
                    raise ValueError(f"{result.image.file}: mask {i} is {m.shape[::-1]} for a {w0}x{h0} image")
                if scale < 1:
                    m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
                self._blend(canvas, m.astype(bool), tag_color(dets.labels[i]))
        base = Image.fromarray(canvas).convert("RGBA")
        layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        size = self.font_size or int(min(max(round(max(h, w) / 70), 10), 64))
        font = _font(size)
        line_w = max(1, round(max(h, w) / 400))
        pad = max(1, size // 5)
        self.last_panel = self._tag_panel(draw, result, font, pad)
        self.last_caption = self._caption_strip(draw, result, font, pad, w, h) if self.captions else None
        layout = LabelLayout(w, h, reserved=[r for r in (self.last_panel, self.last_caption) if r])
        boxes = dets.boxes.astype(np.float64) * scale
        for i in range(len(dets)):
            x1, y1, x2, y2 = boxes[i]
            draw.rectangle([x1, y1, max(x1, x2), max(y1, y2)], outline=tag_color(dets.labels[i]) + (255,), width=line_w)
        self.last_labels = {}
        for i in sorted(range(len(dets)), key=lambda k: -float(dets.scores[k])):  # best boxes get the best places
            lines = self._label_lines(result, i)
            while lines:
                metrics = [_text_box(draw, t, font) for t in lines]
                block = (max(m[0] for m in metrics) + 2 * pad, sum(m[1] + 2 * pad for m in metrics))
                spot = layout.place(tuple(boxes[i]), block)
                if spot is not None:
                    self._draw_label(draw, lines, metrics, spot, tuple(boxes[i]), tag_color(dets.labels[i]), pad, font)
                    self.last_labels[i] = spot
                    break
                lines = lines[:-1]  # no room: fewer lines (caption, then concepts)
        return Image.alpha_composite(base, layer).convert("RGB")

    def _blend(self, canvas: np.ndarray, m: np.ndarray, color) -> None:
        ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if len(ys):  # blend inside the mask's bounding box only
            win = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
            sub, mm = canvas[win], m[win]
            blended = sub[mm].astype(np.float32) * (1.0 - self.mask_alpha) + np.asarray(color, np.float32) * self.mask_alpha
            sub[mm] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)

    def _tag_panel(self, draw, result: ImageResult, font, pad: int):
        tags = list(result.tags)[: self.max_tags]
        if not tags:
            return None
        texts = [f"{t.name} {t.score:.2f}" for t in tags]
        boxes = [_text_box(draw, t, font) for t in texts]
        line_h = max(b[1] + b[3] for b in boxes) + pad
        panel = (0, 0, max(b[0] for b in boxes) + 2 * pad, len(texts) * line_h + pad)
        draw.rectangle(list(panel), fill=(0, 0, 0, 150))
        for k, (text, (_, _, dx, _)) in enumerate(zip(texts, boxes)):
            draw.text((pad - dx, pad + k * line_h), text, font=font, fill=(255, 255, 255, 255), anchor="la")
        return panel

    def _caption_strip(self, draw, result: ImageResult, font, pad: int, w: int, h: int):
        """The image's caption, wrapped into lines across the picture, in a translucent strip at the bottom."""
        if not result.caption or not result.caption.strip():
            return None
        lines: list[str] = []
        for word in result.caption.split():
            if lines and _text_box(draw, f"{lines[-1]} {word}", font)[0] + 2 * pad <= w:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
        boxes = [_text_box(draw, t, font) for t in lines]
        line_h = max(b[1] + b[3] for b in boxes) + pad
        top = max(0, h - len(lines) * line_h - pad)
        strip = (0, top, w, h)
        draw.rectangle(list(strip), fill=(0, 0, 0, 150))
        for k, (text, (_, _, dx, _)) in enumerate(zip(lines, boxes)):
            draw.text((pad - dx, top + pad + k * line_h), text, font=font, fill=(255, 255, 255, 255), anchor="la")
        return strip

    def _label_lines(self, result: ImageResult, i: int) -> list[str]:
        dets, regions = result.detections, result.regions
        lines = [f"{dets.labels[i]} {float(dets.scores[i]):.2f}"]
        if self.concepts and regions is not None and regions.concepts is not None and regions.concepts[i]:
            top = regions.concepts[i][: self.concepts]
            lines.append("concepts: " + ", ".join(f"{c.name} {float(c.score):.2f}" for c in top))
        if self.captions and regions is not None and regions.captions is not None and regions.captions[i]:
            lines.append(regions.captions[i])
        return lines

    @staticmethod
    def _draw_label(draw, lines, metrics, spot, box, color, pad: int, font) -> None:
        tx, ty, tx2, ty2 = spot
        bx1, by1, bx2, by2 = box
        if not (tx <= bx2 + 1 and tx2 >= bx1 - 1 and ty <= by2 + 1 and ty2 >= by1 - 1):  # not touching its box
            cx, cy = min(max(tx, bx1), bx2), min(max(ty, by1), by2)
            draw.line([(tx, ty), (cx, cy)], fill=color + (255,), width=1)
        for text, (tw, th, dx, dy) in zip(lines, metrics):
            draw.rectangle([tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad], fill=color + (200,))
            draw.text((tx + pad - dx, ty + pad - dy), text, font=font, fill=(0, 0, 0, 255), anchor="la")
            ty += th + 2 * pad

    def write(self, result: ImageResult, image: Optional[np.ndarray]) -> None:
        self._check_open(result)
        if image is None:
            raise ValueError(f"{result.image.file}: OverlayWriter needs the image pixels")
        buf = io.BytesIO()
        picture = self.render(result, image)
        if self.format == "jpg":
            picture.save(buf, "JPEG", quality=self.quality)
        else:
            picture.save(buf, "PNG", compress_level=self.compress_level)
        atomic_write_bytes(self._path(result), buf.getvalue())
