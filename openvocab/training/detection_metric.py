"""COCO box AP of a detector's training-time predictions, as an mmengine metric (``val_evaluator``).

The model's ``mode='predict'`` returns one :class:`~openvocab.structures.Detections` per image; the
batch holds the :class:`~.datasets.TrainSample` objects with their ground truth. Both are turned into
a COCO ground truth and a results list and scored by
:func:`openvocab.evaluation.detection_metrics.evaluate_detections` (pycocotools COCOeval), so labels
are matched to classes by normalised name exactly as ``openvocab eval`` matches them.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from ..evaluation.detection_metrics import DetectionReport, evaluate_detections
from ..registry import METRICS
from ..structures import Detections
from .datasets import TrainSample


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in b]


def coco_box_report(samples: Sequence[TrainSample], detections: Sequence[Detections], *,
                    classes: Optional[Sequence[str]] = None) -> DetectionReport:
    """Box AP of ``detections[i]`` on ``samples[i]`` (ground truth: the samples' boxes and labels).

    ``classes``: the categories (default: every label of the ground truth, in order of appearance).
    """
    if len(samples) != len(detections):
        raise ValueError(f"{len(samples)} samples but {len(detections)} predictions")
    names = list(dict.fromkeys(classes if classes is not None else [l for s in samples for l in s.labels]))
    cat_ids = {n: k + 1 for k, n in enumerate(names)}
    images, annotations, results = [], [], []
    for i, (s, det) in enumerate(zip(samples, detections), start=1):
        h, w = s.image.shape[:2]
        images.append({"id": i, "file_name": s.info.file if s.info else f"image_{i}", "width": w, "height": h})
        for box, label in zip(_xywh(s.boxes), s.labels):
            if label not in cat_ids:
                raise ValueError(f"{images[-1]['file_name']}: ground-truth label {label!r} is not one of {names}")
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": cat_ids[label],
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        for box, score, label in zip(_xywh(det.boxes), det.scores.tolist(), det.labels):
            results.append({"image_id": i, "tag": label, "bbox": box, "score": float(score)})
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": k, "name": n} for n, k in cat_ids.items()]}
    return evaluate_detections(gt, results)


@METRICS.register_module()
class CocoBoxAPMetric(BaseMetric):
    """``val_evaluator = dict(type='CocoBoxAPMetric', classes=[...])``: logs ``coco/bbox_AP``,
    ``coco/bbox_AP50``, ``coco/bbox_AP75``."""

    default_prefix = "coco"

    def __init__(self, *, classes: Optional[Sequence[str]] = None, collect_device: str = "cpu",
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classes = None if classes is None else list(classes)

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        samples = data_batch["data"] if isinstance(data_batch, dict) else data_batch
        if len(samples) != len(data_samples):
            raise ValueError(f"batch of {len(samples)} images but {len(data_samples)} predictions")
        for s, det in zip(samples, data_samples):
            if not isinstance(s, TrainSample) or not isinstance(det, Detections):
                raise ValueError(f"CocoBoxAPMetric needs TrainSample inputs and Detections predictions, got "
                                 f"{type(s).__name__} / {type(det).__name__}")
            # keep what the metric needs, not the pixels
            stub = TrainSample(image=np.zeros((s.image.shape[0], s.image.shape[1], 0), np.uint8), info=s.info,
                               boxes=s.boxes, labels=s.labels)
            self.results.append((stub, det))

    def compute_metrics(self, results: list) -> dict[str, float]:
        rep = coco_box_report([s for s, _ in results], [d for _, d in results], classes=self.classes)
        return {f"bbox_{k}": rep.bbox.stats[k] for k in ("AP", "AP50", "AP75")}
