"""Validation metric for tagger fine-tuning: per-tag AP and mAP (mmengine ``BaseMetric``).

A trainable tagger's ``forward(data, mode='predict')`` returns one :class:`TagPrediction` per image
(its probabilities for the trained tags plus the image's ground truth); :class:`TagMAPMetric` gathers
them and computes AP per tag with :func:`openvocab.evaluation.tagging_metrics.average_precision`
(the same AP as ``openvocab eval``). For each tag only *annotated* images count: all images when the
ground truth is exhaustive (``gt_negative_tags is None``), else the tag's positive and verified-negative
images (OpenImages style). Tags without a positive image have no AP and are left out of the mAP.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from ..evaluation.tagging_metrics import average_precision
from ..registry import METRICS


@dataclass(frozen=True)
class TagPrediction:
    """A tagger's scores for one validation image, with that image's ground truth.

    Attributes:
        file: the image file.
        names: the scored tags; scores: ``float32 [len(names)]`` probabilities in that order.
        gt_tags: positive tags; gt_negative_tags: verified-absent tags, or ``None`` = every tag not in
            ``gt_tags`` is negative.
    """

    file: str
    names: tuple[str, ...]
    scores: np.ndarray
    gt_tags: tuple[str, ...]
    gt_negative_tags: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, np.float32).reshape(-1)
        if len(scores) != len(self.names):
            raise ValueError(f"{self.file}: {len(self.names)} tags but {len(scores)} scores")
        object.__setattr__(self, "scores", scores)


def tag_average_precisions(predictions: Sequence[TagPrediction]) -> dict[str, float]:
    """``{tag: AP}`` over the predictions (all must score the same tags); ``NaN`` for a tag without positives."""
    if not predictions:
        raise ValueError("no predictions to evaluate")
    names = predictions[0].names
    if any(p.names != names for p in predictions):
        raise ValueError("predictions score different tag lists")
    out = {}
    for k, tag in enumerate(names):
        scores, labels = [], []
        for p in predictions:
            positive = tag in p.gt_tags
            if positive or p.gt_negative_tags is None or tag in p.gt_negative_tags:
                scores.append(float(p.scores[k]))
                labels.append(positive)
        out[tag] = average_precision(scores, labels)
    return out


def tag_map(predictions: Sequence[TagPrediction]) -> float:
    """Mean AP over tags with at least one positive (``NaN`` if none has)."""
    aps = [v for v in tag_average_precisions(predictions).values() if not math.isnan(v)]
    return float(np.mean(aps)) if aps else float("nan")


@METRICS.register_module()
class TagMAPMetric(BaseMetric):
    """Tag mAP (``{prefix}/mAP``) and, with ``per_tag=True``, ``{prefix}/AP_<tag>``.

    Args:
        per_tag: also report each tag's AP.
        prefix: metric name prefix (default ``tag``).
    """

    default_prefix = "tag"

    def __init__(self, *, per_tag: bool = False, collect_device: str = "cpu", prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.per_tag = bool(per_tag)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for p in data_samples:
            if not isinstance(p, TagPrediction):
                raise ValueError(f"TagMAPMetric expects TagPrediction outputs (forward mode='predict'), "
                                 f"got {type(p).__name__}")
            self.results.append(p)

    def compute_metrics(self, results: list) -> dict[str, float]:
        aps = tag_average_precisions(results)
        valid = [v for v in aps.values() if not math.isnan(v)]
        out = {"mAP": float(np.mean(valid)) if valid else float("nan")}
        if self.per_tag:
            out.update({f"AP_{t}": v for t, v in aps.items()})
        return out
