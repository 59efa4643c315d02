"""Scene cuts: where one shot ends and the next begins, from the colour histograms of consecutive sampled frames.

Each frame is reduced to a per-channel histogram (``bins`` bins) of about ``size x size`` pixels picked on a grid;
the distance of two frames is half the L1 distance of their normalised histograms, averaged over the channels
(0: the same colours, 1: no colour in common). A frame whose distance to the one before exceeds ``threshold`` starts
a new shot. Cheap (a few thousand pixels per frame), deterministic, and blind to motion inside a shot; gradual
transitions (fades, dissolves) are not cuts.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


class SceneCutDetector:
    """``is_cut(frame)``: whether ``frame`` starts a new shot (the first frame never does).

    Args:
        threshold: histogram distance in ``(0, 1]`` above which two consecutive frames are a cut (``None``: never).
        bins: histogram bins per channel.
        size: pixels sampled along each side.
    """

    def __init__(self, *, threshold: Optional[float] = 0.5, bins: int = 16, size: int = 64) -> None:
        if threshold is not None and not 0.0 < float(threshold) <= 1.0:
            raise ValueError(f"scene_cut threshold must be in (0, 1] or None, got {threshold!r}")
        if bins < 2 or size < 4:
            raise ValueError(f"bins must be >= 2 and size >= 4, got {bins} and {size}")
        self.threshold = None if threshold is None else float(threshold)
        self.bins, self.size = int(bins), int(size)
        self._previous: Optional[np.ndarray] = None

    def histogram(self, image: np.ndarray) -> np.ndarray:
        """``float64 [3, bins]``: each channel's normalised histogram of a grid of the image's pixels."""
        h, w = image.shape[:2]
        ys = np.linspace(0, h - 1, min(h, self.size)).astype(np.int64)
        xs = np.linspace(0, w - 1, min(w, self.size)).astype(np.int64)
        grid = image[ys][:, xs].reshape(-1, image.shape[2]).astype(np.int64) * self.bins // 256
        hist = np.stack([np.bincount(grid[:, c], minlength=self.bins) for c in range(grid.shape[1])]).astype(np.float64)
        return hist / grid.shape[0]

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """The distance in ``[0, 1]`` of two frames (see the module docstring)."""
        return float(0.5 * np.abs(self.histogram(a) - self.histogram(b)).sum(axis=1).mean())

    def is_cut(self, image: np.ndarray) -> bool:
        hist = self.histogram(image)
        previous, self._previous = self._previous, hist
        if previous is None or self.threshold is None:
            return False
        return float(0.5 * np.abs(hist - previous).sum(axis=1).mean()) > self.threshold

    def reset(self) -> None:
        self._previous = None
