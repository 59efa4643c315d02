"""Image-tag metrics: per-tag average precision, mAP, and precision/recall/F1 at the tagger's thresholds.

For each tag, only the images where that tag is *annotated* count (see :mod:`.tag_io`): images where it
is positive, and images where it is negative (verified absent, or any image with exhaustive ground
truth that does not list it). Predictions are matched to ground-truth images by file name
(:class:`~.readers.FileMatcher`); a ground-truth image without a prediction predicts nothing.

Average precision (:func:`average_precision`) is the non-interpolated area under the precision-recall
step curve, ``sum_k (R_k - R_{k-1}) * P_k`` over the distinct scores in descending order (tied scores
form one operating point, as in scikit-learn's ``average_precision_score``). An image the tagger gave no
score for the tag is never retrieved: a positive among them caps recall below 1. A tag without any
positive image has no AP (``NaN``) and is left out of the mAP.

At the thresholds, per tag: ``TP`` = fired and positive, ``FP`` = fired and negative, ``FN`` = positive and
not fired. ``precision = TP / (TP + FP)`` (0 when nothing fired), ``recall = TP / (TP + FN)`` (``NaN``
without positives), ``F1`` their harmonic mean (0 when both are 0). Micro averages sum the counts over
tags; macro averages are means over the tags with at least one positive.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .readers import FileMatcher, no_match_error
from .tag_io import TagGroundTruth, TagPredictions


def average_precision(scores: Sequence[Optional[float]], labels: Sequence[bool]) -> float:
    """Non-interpolated AP of one ranking (see the module docstring).

    Args:
        scores: one score per item; ``None`` = not retrieved.
        labels: ``True`` for a positive item.

    Returns:
        AP in ``[0, 1]``, or ``NaN`` if no item is positive.
    """
    if len(scores) != len(labels):
        raise ValueError(f"scores and labels differ in length: {len(scores)} vs {len(labels)}")
    n_pos = int(sum(bool(x) for x in labels))
    if n_pos == 0:
        return float("nan")
    kept = [(float(s), bool(y)) for s, y in zip(scores, labels) if s is not None]
    if any(not math.isfinite(s) for s, _ in kept):
        raise ValueError("scores must be finite numbers or None")
    if not kept:
        return 0.0
    s = np.asarray([k[0] for k in kept], np.float64)
    y = np.asarray([k[1] for k in kept], np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each group of tied scores
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass(frozen=True)
class TagScore:
    """Metrics of one tag over the images where it is annotated.

    Attributes:
        ap: average precision (``NaN`` without positives).
        n_pos / n_neg: annotated positive / negative images.
        tp / fp / fn: counts at the tagger's thresholds.
        precision / recall / f1: from those counts (see the module docstring).
    """

    ap: float
    n_pos: int
    n_neg: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else float("nan")
    if math.isnan(r):
        return p, r, float("nan")
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _nanmean(values: list[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(sum(v) / len(v)) if v else float("nan")


@dataclass(frozen=True)
class TagMetrics:
    """Result of :func:`evaluate_tags`.

    Attributes:
        per_tag: ``{tag: TagScore}`` for every vocabulary tag.
        mAP: mean AP over tags with a positive image.
        micro: ``{"precision", "recall", "f1"}`` from counts summed over tags.
        macro: same keys, means over tags with a positive image.
        counts: ``images`` (ground truth), ``images_without_prediction``,
            ``predictions_without_gt`` (predicted images matching no ground-truth image),
            ``predicted_tags_outside_vocabulary`` (distinct names).
    """

    per_tag: dict[str, TagScore]
    mAP: float
    micro: dict[str, float]
    macro: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"mAP": self.mAP, "micro": dict(self.micro), "macro": dict(self.macro), "counts": dict(self.counts),
                "per_tag": {t: vars(s).copy() for t, s in self.per_tag.items()}}


def evaluate_tags(gt: TagGroundTruth, pred: TagPredictions, *, threshold: Optional[float] = None,
                  gt_source: str = "ground truth", pred_source: str = "predictions") -> TagMetrics:
    """Per-tag AP, mAP and P/R/F1 of ``pred`` against ``gt``.

    Args:
        gt: ground truth.
        pred: predictions (names already mapped to the ground truth's naming).
        threshold: when given, a tag *fires* when its score is ``>= threshold`` instead of when the
            prediction lists it among the tags that passed the tagger's own thresholds.
        gt_source / pred_source: names of the inputs, for messages.

    Raises ``ValueError`` when no predicted image matches a ground-truth image (as box evaluation does).
    """
    if threshold is not None and not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    match = FileMatcher(gt_files={f: f for f in gt.positives})
    scores: dict[str, dict[str, float]] = {}
    fired: dict[str, frozenset] = {}
    unmatched = 0
    for file in pred.scores:
        g = match(file)
        if g is None:
            unmatched += 1
            continue
        if g in scores:
            raise ValueError(f"two predicted images match ground-truth image {g!r}")
        scores[g] = pred.scores[file]
        fired[g] = (frozenset(t for t, s in scores[g].items() if s >= threshold) if threshold is not None
                    else pred.fired[file])
    if not scores:
        raise no_match_error(list(pred.scores), list(gt.positives), pred_source=pred_source, gt_source=gt_source)
    vocab = set(gt.vocabulary)
    outside = {t for s in scores.values() for t in s if t not in vocab}

    per_tag: dict[str, TagScore] = {}
    files = list(gt.positives)
    for tag in gt.vocabulary:
        ranked, labels, tp = [], [], 0
        fp = fn = 0
        for f in files:
            positive = tag in gt.positives[f]
            negs = gt.negatives[f]
            if not positive and negs is not None and tag not in negs:
                continue  # not annotated for this image
            s = scores.get(f, {}).get(tag)
            ranked.append(s)
            labels.append(positive)
            hit = tag in fired.get(f, frozenset())
            tp += hit and positive
            fp += hit and not positive
            fn += positive and not hit
        p, r, f1 = _prf(tp, fp, fn)
        n_pos = int(sum(labels))
        per_tag[tag] = TagScore(ap=average_precision(ranked, labels), n_pos=n_pos, n_neg=len(labels) - n_pos,
                                tp=tp, fp=fp, fn=fn, precision=p, recall=r, f1=f1)
    with_pos = [s for s in per_tag.values() if s.n_pos > 0]
    mp, mr, mf = _prf(sum(s.tp for s in per_tag.values()), sum(s.fp for s in per_tag.values()),
                      sum(s.fn for s in per_tag.values()))
    return TagMetrics(
        per_tag=per_tag,
        mAP=_nanmean([s.ap for s in with_pos]),
        micro={"precision": mp, "recall": mr, "f1": mf},
        macro={"precision": _nanmean([s.precision for s in with_pos]),
               "recall": _nanmean([s.recall for s in with_pos]), "f1": _nanmean([s.f1 for s in with_pos])},
        counts={"images": len(files), "images_without_prediction": len(files) - len(scores),
                "predictions_without_gt": unmatched, "predicted_tags_outside_vocabulary": len(outside)})
