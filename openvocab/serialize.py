"""Lossless JSON form of an :class:`~openvocab.structures.ImageResult` (``labels.jsonl``, resume journal).

One image becomes::

    {"file": str, "width": int, "height": int,
     "tags": [{"name", "score", "source", "name_zh"?, "boxable"?}],
     "detections": [{"box": [x1, y1, x2, y2], "score", "label", "phrase",
                     "mask"?: {"size": [H, W], "counts": str}, "mask_score"?,
                     "concepts"?: [{"name", "score"}], "caption"?}]}

Boxes are absolute pixels (``xyxy``) of the displayed image. ``float32`` numbers are written as the
Python float of the same value, so reading them back into ``float32`` gives the identical bits.
Optional keys are present only when the value exists (``mask``/``mask_score`` when a mask head ran,
``concepts``/``caption`` when it produced them). The one thing not kept: a mask head that ran on an
image without detections (empty ``Regions``) reads back as ``regions=None``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .structures import Concept, Detections, ImageInfo, ImageResult, Regions, Tag, Tags, TagSource


def rle_to_json(rle: dict) -> dict:
    """A COCO RLE with JSON-safe ``size`` ints and ``counts`` string."""
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def tag_to_dict(tag: Tag) -> dict:
    d: dict[str, Any] = {"name": tag.name, "score": float(tag.score), "source": tag.source.value}
    if tag.name_zh is not None:
        d["name_zh"] = tag.name_zh
    if tag.boxable is not None:
        d["boxable"] = bool(tag.boxable)
    return d


def region_to_dict(regions: Regions, i: int) -> dict:
    """Region ``i``: ``{"mask", "mask_score", "concepts"?, "caption"?}`` (JSON-safe)."""
    d: dict[str, Any] = {"mask": rle_to_json(regions.masks[i]), "mask_score": float(regions.mask_scores[i])}
    if regions.concepts is not None:
        d["concepts"] = [{"name": c.name, "score": float(c.score)} for c in regions.concepts[i]]
    if regions.captions is not None:
        d["caption"] = regions.captions[i]
    return d


def result_to_dict(result: ImageResult) -> dict:
    """:class:`ImageResult` -> JSON-safe dict (see the module docstring for the layout)."""
    if not isinstance(result, ImageResult):
        raise ValueError(f"expected an ImageResult, got {type(result).__name__}")
    dets, regions = result.detections, result.regions
    out_dets = []
    for i in range(len(dets)):
        d: dict[str, Any] = {"box": [float(v) for v in dets.boxes[i]], "score": float(dets.scores[i]),
                             "label": dets.labels[i], "phrase": dets.phrases[i]}
        if regions is not None:
            d.update(region_to_dict(regions, i))
        out_dets.append(d)
    out = {"file": result.image.file, "width": int(result.image.width), "height": int(result.image.height),
           "tags": [tag_to_dict(t) for t in result.tags], "detections": out_dets}
    if result.caption is not None:
        out["caption"] = result.caption
    return out


def _need(d: dict, key: str, where: str):
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    if key not in d:
        raise ValueError(f"{where}: missing key {key!r}")
    return d[key]


def result_from_dict(data: dict) -> ImageResult:
    """Inverse of :func:`result_to_dict`. Raises ``ValueError`` on a malformed dict."""
    file = _need(data, "file", "result")
    where = f"result for {file!r}"
    try:
        info = ImageInfo(file=str(file), width=int(_need(data, "width", where)),
                         height=int(_need(data, "height", where)))
        tags = Tags(tuple(Tag(name=_need(t, "name", where), score=float(_need(t, "score", where)),
                              source=TagSource(t.get("source", TagSource.CLOSED_SET.value)),
                              name_zh=t.get("name_zh"), boxable=t.get("boxable"))
                          for t in _need(data, "tags", where)))
        raw = list(_need(data, "detections", where))
        boxes = np.asarray([_need(d, "box", where) for d in raw], np.float32).reshape(-1, 4)
        dets = Detections(boxes=boxes, scores=np.asarray([_need(d, "score", where) for d in raw], np.float32),
                          labels=tuple(_need(d, "label", where) for d in raw),
                          phrases=tuple(d.get("phrase", d.get("label")) for d in raw))
        with_mask = ["mask" in d for d in raw]
        regions = None
        if any(with_mask):
            if not all(with_mask):
                raise ValueError(f"{where}: some detections have a mask and some do not")
            concepts = None
            if all("concepts" in d for d in raw):
                concepts = tuple(tuple(Concept(name=c["name"], score=float(c["score"])) for c in d["concepts"])
                                 for d in raw)
            captions = tuple(d["caption"] for d in raw) if all("caption" in d for d in raw) else None
            regions = Regions(masks=tuple(rle_to_json(d["mask"]) for d in raw),
                              mask_scores=np.asarray([d.get("mask_score", 0.0) for d in raw], np.float32),
                              concepts=concepts, captions=captions)
        caption = data.get("caption")
        if caption is not None and not isinstance(caption, str):
            raise ValueError(f"{where}: caption must be text, got {type(caption).__name__}")
        return ImageResult(image=info, tags=tags, detections=dets, regions=regions, caption=caption)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{where}: malformed ({type(e).__name__}: {e})") from None
