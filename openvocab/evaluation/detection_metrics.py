"""COCO box and mask AP of the pipeline's ``coco.json`` against a COCO ground truth, via pycocotools.

Predictions name their categories by tag (the pipeline's ``categories[].name`` is the tag). Each tag is
normalised (and mapped through the synonyms, if given), then mapped to a ground-truth class: through the
ontology (``{gt_class_name: [tag, ...]}``) when one is given, and by equal (normalised) name otherwise
(a class name also matches itself under an ontology). Predictions whose tag maps to no ground-truth
class are dropped and counted per tag; so are predictions on images that match no ground-truth image
(file names are matched by :class:`~.readers.FileMatcher`).

Evaluated images: the ground-truth images matching the prediction file's ``images`` (so a run over a
subset is not charged for images it never saw), or every ground-truth image when the predictions are a
bare COCO results list. Box AP uses the ``bbox`` of each prediction; mask AP (only when every kept
prediction has an RLE ``segmentation`` and every ground-truth annotation has a ``segmentation``) uses the
masks alone, so mask areas, not box areas, decide the small/medium/large split.

``fixed_ap=True`` applies the fixed-AP protocol of Dave et al. (2021, "Evaluating large-vocabulary
object detectors: the devil is in the details"): per class, only the ``max_dets_per_class`` (10,000)
highest-scoring detections over the whole dataset are kept and the per-image limit is lifted
(COCOeval ``maxDets = [1, 10, max_dets_per_class]``; AP uses the last).
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .readers import FileMatcher, NameMapper, no_match_error, normalize_name, tag_to_class_map

@dataclass(frozen=True)
class DetectionMetrics:
    """COCOeval summary of one IoU type.

    Attributes:
        iou_type: ``"bbox"`` or ``"segm"``.
        stats: ``AP, AP50, AP75, APs, APm, APl`` and ``AR@<maxDets>`` for the three maxDets, and
            ``ARs, ARm, ARl`` (COCOeval's 12 numbers; ``NaN`` where COCOeval reports -1).
        per_class: ``{gt class name: AP}`` (IoU 0.50:0.95, all areas, last maxDets; ``NaN`` without
            ground truth in the evaluated images).
    """

    iou_type: str
    stats: dict[str, float]
    per_class: dict[str, float]

    def to_dict(self) -> dict:
        return {"iou_type": self.iou_type, "stats": dict(self.stats), "per_class": dict(self.per_class)}


@dataclass(frozen=True)
class DetectionReport:
    """Result of :func:`evaluate_detections`.

    Attributes:
        bbox: box AP.
        segm: mask AP, or ``None`` when masks are missing (``counts["segm_skipped"]`` says why).
        counts: ``predictions``, ``evaluated``, ``dropped_unmapped``, ``dropped_unmatched_image``,
            ``dropped_over_class_limit``, ``images_evaluated``.
        unmapped_tags: ``{tag: dropped predictions}``.
        fixed_ap: whether the fixed-AP protocol was used.
        max_dets_per_class: its per-class limit (``None`` without fixed AP).
    """

    bbox: DetectionMetrics
    segm: Optional[DetectionMetrics]
    counts: dict[str, Any] = field(default_factory=dict)
    unmapped_tags: dict[str, int] = field(default_factory=dict)
    fixed_ap: bool = False
    max_dets_per_class: Optional[int] = None

    def to_dict(self) -> dict:
        return {"bbox": self.bbox.to_dict(), "segm": None if self.segm is None else self.segm.to_dict(),
                "counts": dict(self.counts), "unmapped_tags": dict(self.unmapped_tags), "fixed_ap": self.fixed_ap,
                "max_dets_per_class": self.max_dets_per_class}


def load_coco_gt(data: Mapping[str, Any], *, source: str = "ground truth"):
    """A ``pycocotools.coco.COCO`` built from a ground-truth dict (quietly); ``ValueError`` if malformed."""
    from pycocotools.coco import COCO

    if not isinstance(data, Mapping) or not all(isinstance(data.get(k), list)
                                                for k in ("images", "annotations", "categories")):
        raise ValueError(f"{source}: a COCO ground truth needs 'images', 'annotations' and 'categories' lists")
    coco = COCO()
    coco.dataset = copy.deepcopy(dict(data))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except (KeyError, TypeError) as e:
        raise ValueError(f"{source}: malformed COCO ground truth ({type(e).__name__}: {e})") from None
    return coco


def _pred_records(pred: Any, source: str) -> tuple[list[dict], Optional[list[str]]]:
    """Prediction entries as ``{"file" | "image_id", "tag" | "category_id", "bbox", "score", "segmentation"?}``."""
    if isinstance(pred, Mapping):
        try:
            files = {im["id"]: im["file_name"] for im in pred["images"]}
            cats = {c["id"]: c["name"] for c in pred.get("categories", [])}
            out = []
            for a in pred.get("annotations", []):
                tag = cats.get(a.get("category_id"), a.get("tag"))
                if tag is None:
                    raise KeyError(f"category of annotation {a.get('id')}")
                rec = {"file": files[a["image_id"]], "tag": tag, "bbox": a["bbox"], "score": a["score"]}
                if a.get("segmentation") is not None:
                    rec["segmentation"] = a["segmentation"]
                out.append(rec)
            return out, list(files.values())
        except (KeyError, TypeError) as e:
            raise ValueError(f"{source}: malformed COCO predictions ({type(e).__name__}: {e})") from None
    if isinstance(pred, list):
        out = []
        for i, a in enumerate(pred):
            ok = isinstance(a, Mapping) and "bbox" in a and "score" in a and (
                "image_id" in a or "file_name" in a) and any(k in a for k in ("tag", "category_name", "category_id"))
            if not ok:
                raise ValueError(f"{source}[{i}]: a result needs image_id/file_name, tag/category_name/"
                                 f"category_id, bbox and score")
            rec = {k: a[k] for k in ("bbox", "score", "segmentation", "image_id", "category_id") if k in a}
            if "file_name" in a:
                rec["file"] = a["file_name"]
            if "tag" in a or "category_name" in a:
                rec["tag"] = a.get("tag", a.get("category_name"))
            out.append(rec)
        return out, None
    raise ValueError(f"{source}: predictions must be COCO JSON (images/annotations/categories) or a results list")


def prediction_tag_names(pred: Any, *, source: str = "predictions") -> list[str]:
    """The distinct tag names of a prediction file's detections (for a synonym normaliser)."""
    records, _ = _pred_records(pred, source)
    return list(dict.fromkeys(str(r["tag"]) for r in records if "tag" in r))


def _valid_box(b: Any) -> bool:
    return (isinstance(b, (list, tuple)) and len(b) == 4
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in b))


def _cap_per_class(results: list[dict], limit: int) -> tuple[list[dict], int]:
    by_cat: dict[int, list[dict]] = {}
    for r in results:
        by_cat.setdefault(r["category_id"], []).append(r)
    kept = []
    for rs in by_cat.values():
        kept += sorted(rs, key=lambda r: -r["score"])[:limit]
    return kept, len(results) - len(kept)


def _summarize(ev) -> dict[str, float]:
    """COCOeval.summarize's 12 numbers, computed from ``ev.eval`` for the *configured* maxDets.

    (``summarize`` itself looks up ``maxDets=100`` for AP, which is absent under the fixed-AP maxDets.)
    """
    p = ev.params
    m = list(p.maxDets)
    areas = list(p.areaRngLbl)

    def mean(kind: str, area: str = "all", iou: Optional[float] = None, max_det: int = m[-1]) -> float:
        a, k = areas.index(area), m.index(max_det)
        if kind == "ap":
            s = ev.eval["precision"]  # [T, R, K, A, M]
            if iou is not None:
                s = s[np.isclose(p.iouThrs, iou)]
            s = s[:, :, :, a, k]
        else:
            s = ev.eval["recall"][:, :, a, k]  # [T, K, A, M]
        s = s[s > -1]
        return float(np.mean(s)) if s.size else float("nan")

    return {"AP": mean("ap"), "AP50": mean("ap", iou=0.5), "AP75": mean("ap", iou=0.75),
            "APs": mean("ap", "small"), "APm": mean("ap", "medium"), "APl": mean("ap", "large"),
            f"AR@{m[0]}": mean("ar", max_det=m[0]), f"AR@{m[1]}": mean("ar", max_det=m[1]),
            f"AR@{m[2]}": mean("ar", max_det=m[2]),
            "ARs": mean("ar", "small"), "ARm": mean("ar", "medium"), "ARl": mean("ar", "large")}


def run_cocoeval(gt, results: list[dict], *, iou_type: str, img_ids: Sequence[int],
                 max_dets: Sequence[int] = (1, 10, 100)) -> DetectionMetrics:
    """COCOeval ``evaluate/accumulate`` (+ :func:`_summarize`) on ``results`` (GT image and category ids), quietly."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        if results:
            dt = gt.loadRes(copy.deepcopy(results))
        else:  # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {"images": list(gt.dataset["images"]), "categories": copy.deepcopy(gt.dataset["categories"]),
                          "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, iouType=iou_type)
        ev.params.imgIds = sorted(img_ids)
        ev.params.maxDets = [int(m) for m in max_dets]
        ev.evaluate()
        ev.accumulate()
    stats = _summarize(ev)
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    per_class = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_class[gt.cats[cat_id]["name"]] = float(np.mean(p)) if p.size else float("nan")
    return DetectionMetrics(iou_type=iou_type, stats=stats, per_class=per_class)


def evaluate_detections(gt_data: Mapping[str, Any], pred_data: Any, *,
                        ontology: Optional[Mapping[str, Sequence[str]]] = None,
                        synonyms: Optional[Mapping[str, str]] = None, fixed_ap: bool = False,
                        max_dets_per_class: int = 10000, gt_source: str = "ground truth",
                        pred_source: str = "predictions") -> DetectionReport:
    """Box (and mask) AP of ``pred_data`` against ``gt_data`` (see the module docstring).

    Args:
        gt_data: COCO ground-truth dict.
        pred_data: the pipeline's COCO dict, or a COCO results list (entries with ``image_id``
            (ground-truth id) or ``file_name``, and ``tag``/``category_name`` or a ground-truth ``category_id``).
        ontology: ``{gt_class_name: [tag, ...]}``.
        synonyms: ``{alias: canonical}`` applied to tags before the ontology.
        fixed_ap: use the fixed-AP protocol with ``max_dets_per_class``.
    """
    if max_dets_per_class < 1:
        raise ValueError(f"max_dets_per_class must be >= 1, got {max_dets_per_class}")
    gt = load_coco_gt(gt_data, source=gt_source)
    mapper = NameMapper(synonyms=synonyms)
    class_ids: dict[str, int] = {}
    for c in gt.dataset["categories"]:
        n = normalize_name(c["name"])
        if n in class_ids:
            raise ValueError(f"{gt_source}: two categories named {c['name']!r}")
        class_ids[n] = c["id"]
    for c in gt.dataset["categories"]:  # a class named by an alias is also found under the canonical name
        class_ids.setdefault(mapper(c["name"]), c["id"])
    tag_map = tag_to_class_map(ontology, mapper) if ontology else {}
    unknown = sorted({normalize_name(c) for c in (ontology or {})} - set(class_ids))
    if unknown:
        raise ValueError(f"ontology names classes not in the ground truth: {unknown[:10]}")
    match = FileMatcher(gt_files={im["file_name"]: im["id"] for im in gt.dataset["images"]})

    records, pred_files = _pred_records(pred_data, pred_source)
    results, unmapped, no_image = [], Counter(), 0
    for i, r in enumerate(records):
        if not _valid_box(r["bbox"]) or not isinstance(r["score"], (int, float)):
            raise ValueError(f"{pred_source}: prediction {i} has a malformed bbox/score: {r['bbox']!r}, {r['score']!r}")
        img = r["image_id"] if "image_id" in r and "file" not in r else match(r["file"])
        if img is None or img not in gt.imgs:
            no_image += 1
            continue
        if "tag" in r:
            t = mapper(str(r["tag"]))
            cat = class_ids.get(tag_map.get(t, t))
            if cat is None:
                unmapped[str(r["tag"])] += 1
                continue
        else:
            cat = r["category_id"]
            if cat not in gt.cats:
                unmapped[f"category_id {cat}"] += 1
                continue
        res = {"image_id": img, "category_id": cat, "bbox": [float(v) for v in r["bbox"]], "score": float(r["score"])}
        if "segmentation" in r:
            res["segmentation"] = r["segmentation"]
        results.append(res)
    over = 0
    max_dets = (1, 10, 100)
    if fixed_ap:
        results, over = _cap_per_class(results, max_dets_per_class)
        max_dets = (1, 10, max_dets_per_class)
    if pred_files is None:
        img_ids = list(gt.imgs)
    else:
        img_ids = sorted({i for i in (match(f) for f in pred_files) if i is not None})
        if not img_ids:
            raise no_match_error(pred_files, [im["file_name"] for im in gt.dataset["images"]],
                                 pred_source=pred_source, gt_source=gt_source)
    bbox = run_cocoeval(gt, [{k: v for k, v in r.items() if k != "segmentation"} for r in results],
                        iou_type="bbox", img_ids=img_ids, max_dets=max_dets)
    segm, why = None, None
    if not all(isinstance(r.get("segmentation"), Mapping) for r in results):
        why = "predictions without RLE masks"
    elif not all("segmentation" in a for a in gt.dataset["annotations"]):
        why = "ground truth without segmentation"
    else:
        segm_res = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
        for r in segm_res:
            seg = dict(r["segmentation"])
            if isinstance(seg.get("counts"), str):
                seg["counts"] = seg["counts"].encode("ascii")
            r["segmentation"] = seg
        segm = run_cocoeval(gt, segm_res, iou_type="segm", img_ids=img_ids, max_dets=max_dets)
    counts = {"predictions": len(records), "evaluated": len(results), "dropped_unmapped": sum(unmapped.values()),
              "dropped_unmatched_image": no_image, "dropped_over_class_limit": over, "images_evaluated": len(img_ids)}
    if why:
        counts["segm_skipped"] = why
    return DetectionReport(bbox=bbox, segm=segm, counts=counts, unmapped_tags=dict(unmapped), fixed_ap=fixed_ap,
                           max_dets_per_class=max_dets_per_class if fixed_ap else None)
