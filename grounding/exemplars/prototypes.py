"""Prototype matching: example embeddings -> one prototype per class, thresholds calibrated from the examples
themselves, and the assignment of region embeddings to the nearest prototype (pure NumPy; embeddings are
L2-normalised, similarity is the cosine).

* A class's prototype is the normalised mean of its positive examples' embeddings.
* Its threshold (unless one is fixed) is calibrated by leave-one-out: each positive example is scored against the
  prototype of the class's *other* examples (how an unseen example of the class scores); every example of the other
  classes and every negative example is scored against the class's prototype (what it must reject). The threshold
  is the midpoint between neighbouring scores that best separates the two (the largest true-positive rate minus
  false-positive rate; the widest gap among ties). With no example to reject, it is the lowest leave-one-out score
  or the mean less two standard deviations, whichever is lower. A class with a single example cannot be left out:
  it gets ``default_threshold``.
* A region goes to its most similar prototype when the similarity reaches that class's threshold and no negative
  example of the class is more similar to it; its score is the similarity (clipped to [0, 1]).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """How one class's threshold was set: ``method`` is ``'leave-one-out'``, ``'fixed'`` or ``'default'``."""

    name: str
    threshold: float
    positives: int
    negatives: int
    method: str

    def describe(self) -> str:
        detail = {"leave-one-out": f"leave-one-out over {self.positives} examples, {self.negatives} to reject",
                  "fixed": "fixed", "default": "default: one example cannot be left out"}[self.method]
        return f"{self.name} {self.threshold:.3f} ({detail})"


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def separating_threshold(positive: Sequence[float], negative: Sequence[float]) -> float:
    """The threshold between ``positive`` scores (to accept) and ``negative`` ones (to reject): see the module
    docstring."""
    pos, neg = np.sort(np.asarray(positive, np.float64)), np.sort(np.asarray(negative, np.float64))
    if len(pos) == 0:
        raise ValueError("no positive scores to calibrate on")
    if len(neg) == 0:
        return float(min(pos[0], pos.mean() - 2 * pos.std()))
    values = np.unique(np.concatenate([pos, neg]))
    cuts = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    gaps = np.concatenate([[0.0], values[1:] - values[:-1], [0.0]])
    best, best_key = float(cuts[0]), None
    for cut, gap in zip(cuts, gaps):
        key = ((pos >= cut).mean() - (neg >= cut).mean(), gap)
        if best_key is None or key > best_key:
            best, best_key = float(cut), key
    return best


class PrototypeIndex:
    """Prototypes and calibrated thresholds of an example set's embeddings (module docstring).

    Args:
        embeddings: ``[N, D]`` one per example.
        classes: the class names; labels: ``[N]`` each example's class index; positive: ``[N]`` its sign.
        threshold: one fixed threshold for every class (``None``: calibrate).
        default_threshold: a class with one positive example (nothing to leave out).
    """

    def __init__(self, *, embeddings: np.ndarray, classes: Sequence[str], labels: Sequence[int],
                 positive: Sequence[bool], threshold: Optional[float] = None, default_threshold: float = 0.7) -> None:
        emb = _normalise(embeddings)
        labels, positive = np.asarray(labels, np.int64), np.asarray(positive, bool)
        if emb.ndim != 2 or len(emb) != len(labels) or len(labels) != len(positive):
            raise ValueError("one embedding, label and sign per example")
        self.classes = tuple(classes)
        protos, self.calibration = [], []
        for k in range(len(self.classes)):
            mine = emb[(labels == k) & positive]
            if len(mine) == 0:
                raise ValueError(f"class {self.classes[k]!r} has no positive example")
            protos.append(_normalise(mine.sum(0)))
        self.prototypes = np.stack(protos)
        self.negatives = emb[~positive]
        self.negative_labels = labels[~positive]
        for k, name in enumerate(self.classes):
            self.calibration.append(self._calibrate(k, name, emb, labels, positive, threshold, default_threshold))
        self.thresholds = np.asarray([c.threshold for c in self.calibration])

    def _calibrate(self, k: int, name: str, emb: np.ndarray, labels: np.ndarray, positive: np.ndarray,
                   threshold: Optional[float], default: float) -> Calibration:
        mine = emb[(labels == k) & positive]
        others = emb[(labels != k) | ~positive]
        if threshold is not None:
            return Calibration(name, float(threshold), len(mine), len(others), "fixed")
        if len(mine) < 2:
            return Calibration(name, float(default), len(mine), len(others), "default")
        total = mine.sum(0)
        loo = [float(e @ _normalise(total - e)) for e in mine]  # each example against the others' prototype
        reject = (others @ self.prototypes[k]).tolist()
        return Calibration(name, separating_threshold(loo, reject), len(mine), len(others), "leave-one-out")

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """``[M, C]`` cosine similarities of region embeddings to the prototypes."""
        return _normalise(embeddings) @ self.prototypes.T if len(embeddings) else np.zeros((0, len(self.classes)))

    def assign(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(class index [M] (-1: none), score [M])`` of region embeddings ``[M, D]``."""
        if len(embeddings) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        emb = _normalise(embeddings)
        sims = emb @ self.prototypes.T
        best = sims.argmax(1)
        score = sims[np.arange(len(emb)), best]
        ok = score >= self.thresholds[best]
        if len(self.negatives):
            neg = emb @ self.negatives.T  # [M, n_neg]
            for i in np.flatnonzero(ok):
                mine = self.negative_labels == best[i]
                if mine.any() and neg[i, mine].max() > score[i]:
                    ok[i] = False  # nearer a "not this" example of its class than to the class
        return np.where(ok, best, -1), np.clip(score, 0.0, 1.0).astype(np.float32)

    def report(self) -> list[str]:
        return [c.describe() for c in self.calibration]
