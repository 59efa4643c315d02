"""Synthetic detection/tagging data: filled coloured shapes on textured backgrounds.

For tests and demos of the training recipes. ``make_synthetic_dataset(OUT, num_images=N)`` writes

* ``OUT/images/NNNNN.png``: RGB, a textured background (stripes, checks, gradient or smooth noise) with
  1..``max_objects`` filled shapes of distinct classes and colours, random sizes, positions and
  rotations, painted one over the other (later shapes occlude earlier ones, but every object keeps
  at least :data:`MIN_VISIBLE` of its area), plus mild pixel noise;
* ``OUT/coco.json``: COCO instances; each image has ``tags`` (the class names present) and a
  ``caption`` ("a red circle and a blue star on a striped background"); each annotation has the
  *visible* mask as COCO RLE (``openvocab.masks.encode_mask``), its ``bbox`` (xywh, the mask's
  tight box, pixel-inclusive like ``pycocotools.mask.toBbox``), ``area`` (mask pixels),
  ``category_id`` (1-based, in ``classes`` order), ``iscrowd`` 0 and the shape's ``color``;
* ``OUT/tags.jsonl``: ``{"file", "tags", "caption"}`` per image (what ``JsonlTagDataset`` reads).

Image ``i`` depends only on ``(seed, i)``, so a run is reproducible and a larger set extends a smaller
one. Shape colours are random per object; ``class_colours=True`` draws each class in its own colour,
an easy set on which small from-scratch models learn within a few hundred CPU steps.
``python -m openvocab.training.synthetic OUT --num-images N`` does the same from a shell.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..masks import encode_mask

#: the shape classes (single lowercase words)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")
#: shape colours (saturated, so they stand out from the muted backgrounds)
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35), "green": (35, 165, 55), "blue": (35, 70, 215), "yellow": (235, 205, 35),
    "purple": (135, 55, 175), "orange": (240, 125, 25), "white": (245, 245, 245), "black": (20, 20, 20)}
BACKGROUNDS: tuple[str, ...] = ("striped", "checkered", "gradient", "mottled")
#: every object keeps at least this fraction of its own area visible
MIN_VISIBLE = 0.6
#: circumradius of a shape, as a fraction of the shorter image side
RADIUS_RANGE = (0.12, 0.28)
_PLACEMENT_TRIES = 50


@dataclass(frozen=True)
class SyntheticSet:
    """Where :func:`make_synthetic_dataset` wrote a set: its folder, COCO file, JSONL file and classes."""

    root: Path
    coco_json: Path
    tags_jsonl: Path
    classes: tuple[str, ...]


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        pts = [(math.cos(a), math.sin(a)) for a in (math.pi / 4 + k * math.pi / 2 for k in range(4))]
    elif shape == "triangle":
        pts = [(math.cos(a), math.sin(a)) for a in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
    elif shape == "star":
        pts = [((1.0 if k % 2 == 0 else 0.45) * math.cos(a), (1.0 if k % 2 == 0 else 0.45) * math.sin(a))
               for k, a in enumerate(-math.pi / 2 + k * math.pi / 5 for k in range(10))]
    elif shape == "cross":
        a = 0.3
        pts = [(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a), (a, 1), (-a, 1), (-a, a), (-1, a),
               (-1, -a), (-a, -a)]
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + r * (c * x - s * y), cy + r * (s * x + c * y)) for x, y in pts]


def _shape_mask(shape: str, size: tuple[int, int], cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """``bool [H, W]`` full (unoccluded) mask of one shape; ``size`` is ``(width, height)``."""
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    if shape in ("circle", "ring"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        if shape == "ring":
            q = 0.55 * r
            draw.ellipse((cx - q, cy - q, cx + q, cy + q), fill=0)
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=255)
    return np.asarray(canvas) > 0


def _background(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, str]:
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    c1, c2 = rng.integers(70, 190, (2, 3)).astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0, math.pi)
    if kind == "striped":
        period = rng.uniform(6, 18)
        t = (np.sin(2 * math.pi * (xs * math.cos(theta) + ys * math.sin(theta)) / period) > 0).astype(np.float32)
    elif kind == "checkered":
        p = int(rng.integers(6, 17))
        t = (((xs // p) + (ys // p)) % 2).astype(np.float32)
    elif kind == "gradient":
        proj = xs * math.cos(theta) + ys * math.sin(theta)
        t = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    else:  # mottled: smooth noise, bilinear upsampled from a coarse grid
        coarse = Image.fromarray((rng.random((max(height // 16, 2), max(width // 16, 2))) * 255).astype(np.uint8))
        t = np.asarray(coarse.resize((width, height), Image.BILINEAR), np.float32) / 255
    image = c1 * (1 - t[..., None]) + c2 * t[..., None]
    return image, kind


def _place(rng: np.random.Generator, shapes: Sequence[str], width: int, height: int):
    """Random poses whose visible masks each keep ``MIN_VISIBLE`` of their area (or ``None``)."""
    side = min(width, height)
    for _ in range(_PLACEMENT_TRIES):
        full = []
        for shape in shapes:
            r = rng.uniform(*RADIUS_RANGE) * side
            cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
            full.append(_shape_mask(shape, (width, height), cx, cy, r, rng.uniform(0, 2 * math.pi)))
        visible, above = [], np.zeros((height, width), bool)
        for m in reversed(full):  # top-most first
            visible.append(m & ~above)
            above |= m
        visible.reverse()
        if all(m.any() and v.sum() >= MIN_VISIBLE * m.sum() for m, v in zip(full, visible)):
            return full, visible
    return None


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _caption(colours: Sequence[str], shapes: Sequence[str], background: str) -> str:
    parts = [f"{_article(c)} {c} {s}" for c, s in zip(colours, shapes)]
    objects = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{objects} on {_article(background)} {background} background"


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


def _make_image(seed: int, index: int, classes: Sequence[str], width: int, height: int, max_objects: int,
                class_colours: bool):
    rng = np.random.default_rng([seed, index])
    k = int(rng.integers(1, max_objects + 1))
    while True:
        picks = rng.choice(len(classes), size=k, replace=False)
        placed = _place(rng, [classes[i] for i in picks], width, height)
        if placed is not None or k == 1:
            break
        k -= 1  # too crowded for this image size: one object fewer
    if placed is None:
        raise ValueError(f"cannot place a shape in a {width}x{height} image")
    full, visible = placed
    colours = [list(COLOURS)[i] for i in rng.choice(len(COLOURS), size=k, replace=False)]
    if class_colours:  # each class in its own colour (its index in ``classes``)
        colours = [list(COLOURS)[int(i)] for i in picks]
    image, background = _background(rng, width, height)
    for m, c in zip(full, colours):
        image[m] = COLOURS[c]
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    objects = [(int(i), c, v) for i, c, v in zip(picks, colours, visible)]
    return image, objects, _caption(colours, [classes[i] for i in picks], background)


def make_synthetic_dataset(out_dir, *, num_images: int, image_size: tuple[int, int] = (128, 128),
                           classes: Sequence[str] = SHAPES, max_objects: int = 3, seed: int = 0,
                           class_colours: bool = False) -> SyntheticSet:
    """Write a synthetic set (see the module docstring) into ``out_dir``.

    Args:
        num_images: images to write (>= 1).
        image_size: ``(width, height)`` in pixels (each >= 32).
        classes: shape classes to use, a subset of :data:`SHAPES`; category ids follow this order.
        max_objects: most objects per image (1..len(classes)); each image has 1..max_objects.
        seed: image ``i`` depends only on ``(seed, i)``.
        class_colours: draw every class in its own colour (class ``k`` in ``list(COLOURS)[k]``) instead
            of a random one: an easy set, for checking in a few hundred CPU steps that a from-scratch
            model learns (tiny Swin encoders learn colour within that budget, shape identity not).
    """
    classes = tuple(classes)
    unknown = [c for c in classes if c not in SHAPES]
    if not classes or unknown or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names from {SHAPES}, got {list(classes)}")
    if int(num_images) < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if not 1 <= int(max_objects) <= min(len(classes), len(COLOURS)):
        raise ValueError(f"max_objects must be in 1..{min(len(classes), len(COLOURS))}, got {max_objects}")
    width, height = (int(v) for v in image_size)
    if width < 32 or height < 32:
        raise ValueError(f"image_size must be at least 32x32, got {image_size}")
    root = Path(out_dir)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, annotations, lines = [], [], []
    for i in range(int(num_images)):
        pixels, objects, caption = _make_image(seed, i, classes, width, height, int(max_objects),
                                               bool(class_colours))
        name = f"images/{i:05d}.png"
        Image.fromarray(pixels, "RGB").save(root / name)
        tags = [classes[c] for c, _, _ in objects]
        images.append({"id": i + 1, "file_name": name, "width": width, "height": height, "tags": tags,
                       "caption": caption})
        lines.append(json.dumps({"file": name, "tags": tags, "caption": caption}))
        for c, colour, mask in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": c + 1,
                                "bbox": _bbox(mask), "area": int(mask.sum()), "segmentation": encode_mask(mask),
                                "iscrowd": 0, "color": colour})
    coco = {"info": {"description": f"openvocab synthetic shapes (seed {seed})"}, "licenses": [],
            "images": images, "annotations": annotations,
            "categories": [{"id": k + 1, "name": c, "supercategory": "shape"} for k, c in enumerate(classes)]}
    coco_json, tags_jsonl = root / "coco.json", root / "tags.jsonl"
    coco_json.write_text(json.dumps(coco), encoding="utf-8")
    tags_jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return SyntheticSet(root=root, coco_json=coco_json, tags_jsonl=tags_jsonl, classes=classes)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m openvocab.training.synthetic",
                                description="Write a synthetic shapes dataset (COCO JSON + tags JSONL + PNGs).")
    p.add_argument("out", help="output folder")
    p.add_argument("--num-images", type=int, required=True)
    p.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("WIDTH", "HEIGHT"))
    p.add_argument("--classes", nargs="+", default=list(SHAPES), help=f"subset of {' '.join(SHAPES)}")
    p.add_argument("--max-objects", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class-colours", action="store_true", help="draw each class in its own colour (easy set)")
    a = p.parse_args(argv)
    try:
        s = make_synthetic_dataset(a.out, num_images=a.num_images, image_size=tuple(a.size), classes=a.classes,
                                   max_objects=a.max_objects, seed=a.seed, class_colours=a.class_colours)
    except ValueError as e:
        p.error(str(e))
    print(f"{a.num_images} images -> {s.coco_json}, {s.tags_jsonl}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
