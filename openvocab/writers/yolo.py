"""YOLO datasets that Ultralytics trains on as written: ``yolo/`` (boxes) and ``yolo-seg/`` (mask polygons).

Layout (``subdir`` ``yolo``, or ``yolo-seg`` for ``--formats yolo-seg``)::

    yolo/data.yaml                         train, val, nc, names (the job's class numbering)
    yolo/images/{train,val}/<stem><ext>    the input images: symbolic links (``images='copy'``: copies)
    yolo/labels/{train,val}/<stem>.txt     one line per object; empty for an image without any

``data.yaml`` has no ``path`` key: Ultralytics then reads ``train``/``val`` relative to the YAML's
own folder, so the folder can be moved as a whole. An image goes to ``val`` when a hash of its path
relative to the image root falls under ``val_fraction`` (:func:`openvocab.image_root.split_of`): the
split of an image never depends on the other images or on the run. When no image falls in ``val``
(tiny sets), ``val`` names the train images.

Box lines are ``class cx cy w h`` normalised to ``[0, 1]`` by the image width/height (boxes clipped
to the image; boxes empty after clipping dropped). With ``segments=True`` a line is ``class x1 y1 x2
y2 ...``: the normalised outer contour of the object's mask (its largest part, simplified by
``epsilon`` pixels), or its box as four corners when it has no mask. Class ids follow the job's
class numbering (the vocabulary's order, or the tagger's tag-list order), the same as COCO's minus
one; without one, the labels found sorted by name. Files of images finished by an earlier run are
written again only if missing (e.g. ``yolo`` newly asked for).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from ..image_root import split_of
from ..registry import WRITERS
from ..structures import ImageResult
from .base import IMAGE_MODES, Writer, atomic_write_text, make_dirs, place_image, plain_name  # noqa: F401
from .masks import decode_mask, mask_to_polygons

SPLITS = ("train", "val")


def _fmt(v: float) -> str:
    return f"{v:.6f}"


def _clip01(v: float) -> float:
    return min(max(v, 0.0), 1.0)


@WRITERS.register_module()
class YoloWriter(Writer):
    """Writes ``<out>/<subdir>/{data.yaml,images/,labels/}`` (see the module docstring).

    Args:
        subdir: folder inside the output folder.
        segments: mask polygons instead of boxes (YOLO-seg).
        val_fraction: share of images in the ``val`` split, in ``[0, 1]``.
        images: ``"symlink"`` (links to the inputs) or ``"copy"``.
        epsilon: polygon simplification tolerance in pixels (``cv2.approxPolyDP``; ``0``: every contour point).
    """

    per_image = True

    def __init__(self, *, subdir: str = "yolo", segments: bool = False, val_fraction: float = 0.1,
                 images: str = "symlink", epsilon: float = 1.0) -> None:
        super().__init__()
        plain_name(subdir, "subdir")
        if not 0.0 <= float(val_fraction) <= 1.0:
            raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
        if images not in IMAGE_MODES:
            raise ValueError(f"images must be one of {IMAGE_MODES}, got {images!r}")
        if epsilon < 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.subdir = subdir
        self.segments = bool(segments)
        self.val_fraction = float(val_fraction)
        self.images = images
        self.epsilon = float(epsilon)
        self.classes: dict[str, int] = {}
        self._written: set[str] = set()

    @property
    def root(self) -> Path:
        return self.out_dir / self.subdir

    def _open(self) -> None:
        for split in SPLITS:
            make_dirs(self.out_dir, self.subdir, "labels", split)
            make_dirs(self.out_dir, self.subdir, "images", split)
        known = self.context.classes
        self.classes = {n: i for i, n in enumerate(known)} if known is not None else {}
        self._written = set()

    def split(self, result: ImageResult) -> str:
        """``"train"`` or ``"val"``: the image's split."""
        return split_of(self.file_name(result), self.val_fraction)

    def label_path(self, result: ImageResult, split: Optional[str] = None) -> Path:
        return self.root / "labels" / (split or self.split(result)) / f"{self.name_of(result)}.txt"

    def image_path(self, result: ImageResult, split: Optional[str] = None) -> Path:
        suffix = Path(result.image.file).suffix or ".jpg"
        return self.root / "images" / (split or self.split(result)) / f"{self.name_of(result)}{suffix}"

    def lines(self, result: ImageResult) -> list[str]:
        """The label lines of one image (a label outside the class list is appended to it)."""
        w, h = float(result.image.width), float(result.image.height)
        ids = [self.classes.setdefault(label, len(self.classes)) for label in result.detections.labels]
        dets, regions = result.detections, result.regions
        out = []
        for i, cid in enumerate(ids):
            x1, y1, x2, y2 = (float(v) for v in dets.boxes[i])
            x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
            y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
            if self.segments:
                polys = (mask_to_polygons(decode_mask(regions.masks[i]), epsilon=self.epsilon)
                         if regions is not None else [])
                if not polys and (x2 <= x1 or y2 <= y1):
                    continue
                poly = polys[0] if polys else [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
                coords = [c for x, y in poly for c in (_clip01(x / w), _clip01(y / h))]
                out.append(" ".join([str(cid)] + [_fmt(c) for c in coords]))
                continue
            if x2 <= x1 or y2 <= y1:
                continue
            cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
            out.append(" ".join([str(cid), _fmt(cx), _fmt(cy), _fmt(bw), _fmt(bh)]))
        return out

    def _write(self, result: ImageResult) -> None:
        split = self.split(result)
        for other in SPLITS:  # an image that changed split (another val_fraction): its old files go
            if other != split:
                for stale in (self.label_path(result, other), self.image_path(result, other)):
                    if os.path.lexists(stale):
                        os.unlink(stale)
        place_image(result.image.file, self.image_path(result, split), self.images)
        atomic_write_text(self.label_path(result, split), "".join(line + "\n" for line in self.lines(result)))
        self._written.add(result.image.file)

    def write(self, result: ImageResult, image: Optional[np.ndarray] = None) -> None:
        self._check_open(result)
        if self.context.classes is None:  # ids are known only once every label is: written by finish()
            if not self.context.replay:
                self._kept.append(result)
            return
        self._write(result)

    def finish(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        if self.context.classes is None:
            self.classes = {n: i for i, n in enumerate(self.classes_of(results))}
        counts = dict.fromkeys(SPLITS, 0)
        for r in results():  # images finished by an earlier run, or waiting for their class ids
            counts[self.split(r)] += 1
            if r.image.file not in self._written and (
                    self.context.classes is None or not self.label_path(r).exists()
                    or not os.path.lexists(self.image_path(r))):
                self._write(r)
        names = sorted(self.classes, key=self.classes.get)
        val = "images/val" if counts["val"] else "images/train"
        text = [f"# YOLO{'-seg' if self.segments else ''} dataset written by openvocab: "
                f"{counts['train']} train and {counts['val']} val images"
                + ("" if counts["val"] else " (no image fell in val: val = train)") + ".",
                "# Paths are relative to this file's folder (no 'path' key): yolo train data=<this file>.",
                "train: images/train", f"val: {val}",
                f"nc: {len(names)}", "names:" if names else "names: {}"]
        text += [f"  {i}: {json.dumps(n, ensure_ascii=False)}" for i, n in enumerate(names)]
        atomic_write_text(self.root / "data.yaml", "\n".join(text) + "\n")
        super().finish(results)

    def close(self) -> None:
        if self.out_dir is not None and not self._closed and not self._finished:
            kept = self._kept
            self.finish(lambda: iter(kept))
        super().close()
