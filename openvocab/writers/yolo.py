"""YOLO labels: ``yolo/labels/<stem>.txt`` per image and ``yolo/data.yaml`` with the class names.

Each line is ``class cx cy w h`` normalised to ``[0, 1]`` by the image width/height (boxes are
clipped to the image first; boxes empty after clipping are dropped). With ``segments=True`` and
masks present, a line is ``class x1 y1 x2 y2 ...`` (normalised polygon of the mask's largest outer
contour; the box is used when the mask has no contour). Images without detections get an empty
file. Class ids follow the job's class numbering (the vocabulary's order, or the tagger's tag-list
order), the same as COCO's (minus one); without one, the labels found sorted by name. Label files of
images finished by an earlier run are written again only if missing (e.g. ``yolo`` newly asked for).
"""
from __future__ import annotations

import json
from typing import Callable, Iterable, Optional

import numpy as np

from ..registry import WRITERS
from ..structures import ImageResult
from .base import Writer, atomic_write_text
from .masks import decode_mask, mask_to_polygons


def _fmt(v: float) -> str:
    return f"{v:.6f}"


@WRITERS.register_module()
class YoloWriter(Writer):
    """Writes ``<out>/<subdir>/labels/<stem>.txt`` and ``<out>/<subdir>/data.yaml``.

    Args:
        subdir: folder inside the output folder.
        segments: write mask polygons instead of boxes when masks exist.
    """

    per_image = True

    def __init__(self, *, subdir: str = "yolo", segments: bool = False) -> None:
        super().__init__()
        if not subdir:
            raise ValueError("subdir must be a non-empty folder name")
        self.subdir = subdir
        self.segments = bool(segments)
        self.classes: dict[str, int] = {}
        self._written: set[str] = set()

    @property
    def root(self):
        return self.out_dir / self.subdir

    def _open(self) -> None:
        (self.root / "labels").mkdir(parents=True, exist_ok=True)
        known = self.context.classes
        self.classes = {n: i for i, n in enumerate(known)} if known is not None else {}
        self._written = set()

    def _path(self, result: ImageResult):
        return self.root / "labels" / f"{self.name_of(result)}.txt"

    def lines(self, result: ImageResult) -> list[str]:
        """The label lines of one image (a label outside the class list is appended to it)."""
        w, h = float(result.image.width), float(result.image.height)
        ids = [self.classes.setdefault(label, len(self.classes)) for label in result.detections.labels]
        dets, regions = result.detections, result.regions
        out = []
        for i, cid in enumerate(ids):
            if self.segments and regions is not None:
                polys = mask_to_polygons(decode_mask(regions.masks[i]))
                if polys:
                    coords = [c for x, y in polys[0] for c in (min(max(x / w, 0.0), 1.0), min(max(y / h, 0.0), 1.0))]
                    out.append(" ".join([str(cid)] + [_fmt(c) for c in coords]))
                    continue
            x1, y1, x2, y2 = (float(v) for v in dets.boxes[i])
            x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
            y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
            if x2 <= x1 or y2 <= y1:
                continue
            cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
            out.append(" ".join([str(cid), _fmt(cx), _fmt(cy), _fmt(bw), _fmt(bh)]))
        return out

    def _write(self, result: ImageResult) -> None:
        atomic_write_text(self._path(result), "".join(line + "\n" for line in self.lines(result)))
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
        for r in results():  # images finished by an earlier run, or waiting for their class ids
            if r.image.file not in self._written and (self.context.classes is None or not self._path(r).exists()):
                self._write(r)
        names = sorted(self.classes, key=self.classes.get)
        text = ["# YOLO dataset written by openvocab; label files are in labels/ (one per input image).",
                f"path: {json.dumps(str(self.root.resolve()), ensure_ascii=False)}",
                f"nc: {len(names)}", "names:" if names else "names: {}"]
        text += [f"  {i}: {json.dumps(n, ensure_ascii=False)}" for i, n in enumerate(names)]
        atomic_write_text(self.root / "data.yaml", "\n".join(text) + "\n")
        super().finish(results)

    def close(self) -> None:
        if self.out_dir is not None and not self._closed and not self._finished:
            kept = self._kept
            self.finish(lambda: iter(kept))
        super().close()
