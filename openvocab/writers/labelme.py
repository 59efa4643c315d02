"""LabelMe JSON: ``labelme/<stem>.json`` per image.

Every detection gives a ``rectangle`` shape (points ``[[x1, y1], [x2, y2]]``, absolute pixels);
with masks and ``polygons=True`` also one ``polygon`` shape per outer contour of its mask (largest
first; simplified: no contour pixel farther than ``epsilon`` pixels from the polygon, and at most
``max_points`` points) sharing the rectangle's ``group_id`` (the detection's index; ``null`` without masks). The
score goes in the shape ``description`` (``"score 0.873"``, plus the region caption and the region
concepts if any: ``"score 0.873; a red car; concepts: car 0.80, vehicle 0.10"``).
Image-level tags are the file's ``flags`` (``{tag: true}``). ``imagePath`` is relative to the
``labelme/`` folder; ``imageData`` is ``null``. ``labelme/labels.txt`` is the job's class list, one per
line (``labelme --labels labelme/labels.txt``). On resume, files of an earlier run's images are
written again only if missing.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Optional

import numpy as np

from ..registry import WRITERS
from ..structures import ImageResult
from .base import Writer, atomic_write_json, atomic_write_text, make_dirs, plain_name
from .masks import decode_mask, mask_to_polygons

LABELME_VERSION = "5.4.1"


def _shape(label: str, points, shape_type: str, group_id, description: str) -> dict:
    return {"label": label, "points": points, "group_id": group_id, "description": description,
            "shape_type": shape_type, "flags": {}, "mask": None}


@WRITERS.register_module()
class LabelMeWriter(Writer):
    """Writes ``<out>/<subdir>/<stem>.json``.

    Args:
        subdir: folder inside the output folder.
        polygons: add mask polygons (``cv2.findContours``) when masks exist.
        epsilon: polygon simplification tolerance in pixels (``0``: every contour point).
        max_points: most points of a polygon (``None``: no limit).
    """

    per_image = True

    def __init__(self, *, subdir: str = "labelme", polygons: bool = True, epsilon: float = 1.0,
                 max_points: Optional[int] = 100) -> None:
        super().__init__()
        plain_name(subdir, "subdir")
        if epsilon < 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.subdir = subdir
        self.polygons = bool(polygons)
        self.epsilon = float(epsilon)
        if max_points is not None and max_points < 3:
            raise ValueError(f"max_points must be >= 3 or None, got {max_points}")
        self.max_points = None if max_points is None else int(max_points)

    @property
    def root(self):
        return self.out_dir / self.subdir

    def _open(self) -> None:
        make_dirs(self.out_dir, self.subdir)

    def finish(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        for r in results():  # images finished by an earlier run: files it lacks are written
            path = self._path(r)
            if not path.exists():
                atomic_write_json(path, self.to_dict(r), indent=2)
        atomic_write_text(self.root / "labels.txt", "".join(n + "\n" for n in self.classes_of(results)))
        super().finish(results)

    def _path(self, result: ImageResult):
        return self.root / f"{self.name_of(result)}.json"

    def to_dict(self, result: ImageResult) -> dict:
        """The LabelMe dict of one image."""
        dets, regions = result.detections, result.regions
        shapes = []
        for i in range(len(dets)):
            x1, y1, x2, y2 = (float(v) for v in dets.boxes[i])
            desc = f"score {float(dets.scores[i]):.3f}"
            if regions is not None and regions.captions is not None:
                desc += f"; {regions.captions[i]}"
            if regions is not None and regions.concepts is not None and regions.concepts[i]:
                desc += "; concepts: " + ", ".join(f"{c.name} {float(c.score):.2f}" for c in regions.concepts[i])
            group = i if regions is not None else None
            shapes.append(_shape(dets.labels[i], [[x1, y1], [x2, y2]], "rectangle", group, desc))
            if regions is not None and self.polygons:
                for poly in mask_to_polygons(decode_mask(regions.masks[i]), epsilon=self.epsilon,
                                                 max_points=self.max_points):
                    shapes.append(_shape(dets.labels[i], poly, "polygon", group, desc))
        try:
            image_path = os.path.relpath(os.path.abspath(result.image.file), os.path.abspath(self.root))
        except ValueError:  # another drive (Windows)
            image_path = os.path.abspath(result.image.file)
        return {"version": LABELME_VERSION, "flags": {t.name: True for t in result.tags}, "shapes": shapes,
                "imagePath": image_path, "imageData": None, "imageHeight": int(result.image.height),
                "imageWidth": int(result.image.width)}

    def write(self, result: ImageResult, image: Optional[np.ndarray] = None) -> None:
        self._check_open(result)
        atomic_write_json(self._path(result), self.to_dict(result), indent=2)
