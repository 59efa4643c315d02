"""COCO detection JSON (``coco.json``), loadable by ``pycocotools.coco.COCO``.

* ``images``: ids ``1..N`` in input order; ``file_name`` is the image's path relative to the job's
  image root (``--image-root``; :mod:`openvocab.image_root`), or the input path as given without one; ``tags`` lists every
  image-level tag (``name``, ``score``, ``source``, ``name_zh``?, ``boxable``?); ``caption`` the image's caption (a
  captioner's), also written as a COCO captions file (``captions_file``, ``captions.json`` in a job with a captioner).
* ``categories``: the job's classes in its class numbering (the vocabulary's order, or the tagger's
  tag-list order), ids ``1..K``; without one, the tags used by at least one detection, **sorted by
  name** (so the ids do not depend on which image came first); ``supercategory`` ``"object"``.
* ``annotations``: ids ``1..M``; ``bbox`` ``[x, y, w, h]``; ``area`` = mask area when a mask exists,
  else ``w * h``; ``score``; ``iscrowd`` 0; ``segmentation`` (RLE, string counts) when masks exist;
  extra fields ``tag``, ``phrase``, ``mask_score``, ``concepts`` and ``region_caption``.

The region caption is stored as ``region_caption``, not ``caption``: ``COCO.loadRes`` treats any
result list whose first entry has a ``caption`` key as *caption* results, not detections.
The file is written once, atomically, streamed from the results (memory stays flat).
"""
from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from ..registry import WRITERS
from ..serialize import region_to_dict, tag_to_dict
from ..structures import ImageResult
from ..jsonio import dumps
from .base import Writer, atomic_open, plain_name, class_list
from .masks import mask_area


@WRITERS.register_module()
class CocoWriter(Writer):
    """Writes ``<out>/<filename>`` (COCO JSON with image tags and RLE masks), streamed: memory does not grow
    with the number of images.

    Args:
        filename: output file name inside the output folder.
        indent: JSON indent of the header (``None``: compact); images and annotations are one per line.
    """

    def __init__(self, *, filename: str = "coco.json", indent: Optional[int] = None,
                 captions_file: Optional[str] = None) -> None:
        super().__init__()
        self.filename = plain_name(filename, "filename")
        self.captions_file = None if captions_file is None else plain_name(captions_file, "captions_file")
        if self.captions_file == self.filename:
            raise ValueError(f"captions_file and filename are both {filename!r}")
        self.indent = indent

    def outputs(self) -> list[str]:
        return [self.filename] + ([self.captions_file] if self.captions_file else [])

    def finish(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        names = self.classes_of(results)
        cat_id = {n: i + 1 for i, n in enumerate(names)}
        head = {"info": _info(), "licenses": [],
                "categories": [{"id": cat_id[n], "name": n, "supercategory": "object"} for n in names]}
        path = self.out_dir / self.filename
        with tempfile.TemporaryFile("w+", encoding="utf-8", dir=self.out_dir, prefix=f".{self.filename}.", suffix=".part") as anns, \
                atomic_open(path, "w") as out:
            out.write(dumps(head, indent=self.indent)[:-1].rstrip() + ',\n"images": [')
            n_ann = 0
            for image_id, r in enumerate(results(), start=1):
                out.write(("\n" if image_id == 1 else ",\n") + dumps(coco_image(r, image_id, self.file_name(r))))
                for ann in coco_annotations(r, image_id, cat_id, first_id=n_ann + 1):
                    anns.write(("\n" if n_ann == 0 else ",\n") + dumps(ann))
                    n_ann += 1
            out.write('\n],\n"annotations": [')
            anns.seek(0)
            shutil.copyfileobj(anns, out)
            out.write("\n]}\n")
        if self.captions_file:
            self._write_captions(results)
        super().finish(results)

    def _write_captions(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        """COCO captions (``captions.json``: the ``images`` of ``coco.json`` with the same ids, one annotation
        ``{image_id, id, caption}`` per captioned image), as ``pycocotools.coco.COCO`` and the caption metrics read."""
        with atomic_open(self.out_dir / self.captions_file, "w") as out:
            out.write(dumps({"info": _info(), "licenses": []})[:-1] + ',\n"images": [')
            caps = []
            for image_id, r in enumerate(results(), start=1):
                out.write(("\n" if image_id == 1 else ",\n") + dumps(coco_image(r, image_id, self.file_name(r))))
                if r.caption is not None:
                    caps.append({"image_id": image_id, "id": len(caps) + 1, "caption": r.caption})
            out.write('\n],\n"annotations": [' + ",\n".join(dumps(c) for c in caps) + "]}\n")


def _info() -> dict:
    return {"description": "openvocab labels", "version": "1.0",
            "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def coco_image(r: ImageResult, image_id: int, file_name: Optional[str] = None) -> dict:
    """The COCO ``images`` entry of one result (``file_name``: default the path as given)."""
    entry = {"id": image_id, "file_name": r.image.file if file_name is None else file_name, "width": int(r.image.width),
             "height": int(r.image.height), "tags": [tag_to_dict(t) for t in r.tags]}
    if r.caption is not None:
        entry["caption"] = r.caption
    return entry


def coco_annotations(r: ImageResult, image_id: int, cat_id: dict, *, first_id: int) -> list[dict]:
    """The COCO ``annotations`` of one result, ids from ``first_id``."""
    anns = []
    dets, regions = r.detections, r.regions
    for i in range(len(dets)):
        x1, y1, x2, y2 = (float(v) for v in dets.boxes[i])
        w, h = x2 - x1, y2 - y1
        ann = {"id": first_id + i, "image_id": image_id, "category_id": cat_id[dets.labels[i]],
               "bbox": [x1, y1, w, h], "area": w * h, "score": float(dets.scores[i]), "iscrowd": 0,
               "tag": dets.labels[i], "phrase": dets.phrases[i]}
        if regions is not None:
            region = region_to_dict(regions, i)
            ann["segmentation"] = region.pop("mask")
            ann["area"] = float(mask_area(ann["segmentation"]))
            if "caption" in region:  # not "caption": COCO.loadRes would take the list for caption results
                region["region_caption"] = region.pop("caption")
            ann.update(region)
        anns.append(ann)
    return anns


def build_coco(results: list[ImageResult], classes: Optional[Sequence[str]] = None) -> dict:
    """The COCO dict of ``results`` in memory (see the module docstring); ``classes``: the category order
    (default: the labels found, sorted by name)."""
    names = class_list(classes, results)
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    images, anns = [], []
    for image_id, r in enumerate(results, start=1):
        images.append(coco_image(r, image_id))
        anns += coco_annotations(r, image_id, cat_id, first_id=len(anns) + 1)
    return {"info": _info(), "licenses": [], "images": images, "annotations": anns,
            "categories": [{"id": cat_id[n], "name": n, "supercategory": "object"} for n in names]}
