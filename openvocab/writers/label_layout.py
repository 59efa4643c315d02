"""Where to put box labels on an overlay so that no label covers another label or a reserved area (the tag
panel).

Labels are placed one by one (the caller orders them, e.g. highest score first). A label tries the
places next to its box (above it, inside its top, below it, at its right end), then the free place
nearest to its box corner (a scan of the picture in steps of half a label); a label that fits
nowhere is left out. Occupied areas are kept in a coarse grid (``cell`` pixels), rounded outwards,
so two placed labels never touch.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

Rect = tuple[float, float, float, float]  # x1, y1, x2, y2


class LabelLayout:
    """Free space of a ``width x height`` picture for labels.

    Args:
        reserved: areas no label may cover (``(x1, y1, x2, y2)`` pixels).
        cell: grid cell size in pixels (coarser: faster, more conservative).
    """

    def __init__(self, width: int, height: int, *, reserved: Sequence[Rect] = (), cell: int = 4) -> None:
        if width < 1 or height < 1 or cell < 1:
            raise ValueError(f"bad layout size {width}x{height} (cell {cell})")
        self.width, self.height, self.cell = int(width), int(height), int(cell)
        self.grid = np.zeros((math.ceil(height / cell), math.ceil(width / cell)), bool)
        self.placed: list[Rect] = []
        for r in reserved:
            self._mark(r)

    def _cells(self, r: Rect) -> tuple[slice, slice]:
        c = self.cell
        x1, y1, x2, y2 = r
        return (slice(max(int(math.floor(y1 / c)), 0), max(int(math.ceil(y2 / c)), 0)),
                slice(max(int(math.floor(x1 / c)), 0), max(int(math.ceil(x2 / c)), 0)))

    def _mark(self, r: Rect) -> None:
        self.grid[self._cells(r)] = True

    def free(self, r: Rect) -> bool:
        """Whether ``r`` lies inside the picture and covers no placed label or reserved area."""
        x1, y1, x2, y2 = r
        if x1 < 0 or y1 < 0 or x2 > self.width or y2 > self.height:
            return False
        return not self.grid[self._cells(r)].any()

    def place(self, box: Rect, size: tuple[float, float]) -> Optional[Rect]:
        """A free ``size = (w, h)`` rectangle for the label of ``box`` (then taken), or ``None``."""
        w, h = size
        if w > self.width or h > self.height:
            return None
        x1, y1, x2, y2 = box
        near = [(x1, y1 - h), (x1, y1), (x1, y2), (x2 - w, y1 - h), (x2 - w, y2), (x1, y2 - h), (x2, y1), (x1 - w, y1)]
        for x, y in near:
            x = min(max(x, 0.0), self.width - w)
            y = min(max(y, 0.0), self.height - h)
            if self.free((x, y, x + w, y + h)):
                return self._take((x, y, x + w, y + h))
        step_x, step_y = max(w / 2, self.cell), max(h / 2, self.cell)
        xs = np.arange(0.0, self.width - w + 1e-6, step_x)
        ys = np.arange(0.0, self.height - h + 1e-6, step_y)
        gx, gy = np.meshgrid(xs, ys)
        order = np.argsort(((gx - x1) ** 2 + (gy - y1) ** 2).ravel(), kind="stable")
        for k in order:
            x, y = float(gx.ravel()[k]), float(gy.ravel()[k])
            if self.free((x, y, x + w, y + h)):
                return self._take((x, y, x + w, y + h))
        return None

    def _take(self, r: Rect) -> Rect:
        self._mark(r)
        self.placed.append(r)
        return r
