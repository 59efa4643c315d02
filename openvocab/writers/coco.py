"""COCO detection JSON (``coco.json``), loadable by ``pycocotools.coco.COCO``.

* ``images``: ids ``1..N`` in the order results arrive (an earlier run's results first on resume,
  which is input order); ``file_name`` is the input path as given; ``tags`` lists every
  image-level tag (``name``, ``score``, ``source``, ``name_zh``?, ``boxable``?).
* ``categories``: the tags used by at least one detection, **sorted by name**, ids ``1..K``
  (so the ids do not depend on which image came first); ``supercategory`` ``"object"``.
* ``annotations``: ids ``1..M``; ``bbox`` ``[x, y, w, h]``; ``area`` = mask area when a mask exists,
  else ``w * h``; ``score``; ``iscrowd`` 0; ``segmentation`` (RLE, string counts) when masks exist;
  extra fields ``tag``, ``phrase``, ``mask_score``, ``concepts`` and ``region_caption``.

The region caption is stored as ``region_caption``, not ``caption``: ``COCO.loadRes`` treats any
result list whose first entry has a ``caption`` key as *caption* results, not detections.
The file is written once, atomically, at :meth:`close`.
"""
from __future__ import annotations

import datetime as _dt
from typing import Optional

import numpy as np

from ..registry import WRITERS
from ..serialize import tag_to_dict
from ..structures import ImageResult
from .base import Writer, atomic_write_json
from .masks import mask_area


@WRITERS.register_module()
class CocoWriter(Writer):
    """Writes ``<out>/<filename>`` (COCO JSON with image tags and RLE masks).

    Args:
        filename: output file name inside the output folder.
        indent: JSON indent (``None``: compact).
    """

    def __init__(self, *, filename: str = "coco.json", indent: Optional[int] = None) -> None:
        super().__init__()
        if not filename or "/" in filename or "\\" in filename:
            raise ValueError(f"filename must be a plain file name, got {filename!r}")
        self.filename = filename
        self.indent = indent
        self._results: list[ImageResult] = []

    def _open(self, previous: list[ImageResult]) -> None:
        self._results = list(previous)

    def write(self, result: ImageResult, image: Optional[np.ndarray] = None) -> None:
        self._check_open(result)
        self._results.append(result)

    def _close(self) -> None:
        atomic_write_json(self.out_dir / self.filename, build_coco(self._results), indent=self.indent)


def build_coco(results: list[ImageResult]) -> dict:
    """The COCO dict of ``results`` (see the module docstring)."""
    names = sorted({label for r in results for label in r.detections.labels})
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    images, anns = [], []
    for image_id, r in enumerate(results, start=1):
        images.append({"id": image_id, "file_name": r.image.file, "width": int(r.image.width),
                       "height": int(r.image.height), "tags": [tag_to_dict(t) for t in r.tags]})
        dets, regions = r.detections, r.regions
        for i in range(len(dets)):
            x1, y1, x2, y2 = (float(v) for v in dets.boxes[i])
            w, h = x2 - x1, y2 - y1
            ann = {"id": len(anns) + 1, "image_id": image_id, "category_id": cat_id[dets.labels[i]],
                   "bbox": [x1, y1, w, h], "area": w * h, "score": float(dets.scores[i]), "iscrowd": 0,
                   "tag": dets.labels[i], "phrase": dets.phrases[i]}
            if regions is not None:
                rle = regions.masks[i]
                counts = rle["counts"]
                ann["segmentation"] = {"size": [int(rle["size"][0]), int(rle["size"][1])],
                                       "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
                ann["area"] = float(mask_area(rle))
                ann["mask_score"] = float(regions.mask_scores[i])
                if regions.concepts is not None:
                    ann["concepts"] = [{"name": c.name, "score": float(c.score)} for c in regions.concepts[i]]
                if regions.captions is not None:
                    ann["region_caption"] = regions.captions[i]
            anns.append(ann)
    return {
        "info": {"description": "openvocab labels", "version": "1.0",
                 "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [{"id": cat_id[n], "name": n, "supercategory": "object"} for n in names],
    }
