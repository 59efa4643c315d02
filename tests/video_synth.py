"""Synthetic videos with known tracks (PyAV, H.264): coloured shapes moving on a plain background, written frame by
frame; the ground truth is each object's visible extent on each frame (``GtBox``), from the same drawing.

:func:`tracking_video` is the tracking benchmark of the tests: shot 1 (``cut`` frames) has two circles crossing
(different colours of one class), a triangle crossing the lower circle, and a square that leaves on the right and
comes back; then a scene cut (new background) and shot 2 with new objects (new ground-truth IDs).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional, Sequence

import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).parent / "plugins"))  # the palette detector's package (tests/plugins)
from video_shapes import PALETTE  # noqa: E402


@dataclass(frozen=True)
class Obj:
    gt_id: int
    label: str
    colour: tuple[int, int, int]
    radius: int
    path: Callable[[int], Optional[tuple[float, float]]]  # frame -> centre (x, y), or None when not there


@dataclass(frozen=True)
class GtBox:
    frame: int  # 0-based
    gt_id: int
    label: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive)


def _shape(label: str, cx: float, cy: float, r: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    if label == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    if label == "square":
        return (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    # triangle, apex up
    return (yy <= cy + r) & (yy >= cy - r) & (np.abs(xx - cx) <= (yy - (cy - r)) / 2 + 1)


def render(objs: Sequence[Obj], frame: int, size: tuple[int, int], background) -> tuple[np.ndarray, list[GtBox]]:
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = background
    owner = np.zeros((h, w), np.int32)
    for o in objs:  # later objects are drawn over earlier ones
        c = o.path(frame)
        if c is None:
            continue
        m = _shape(o.label, c[0], c[1], o.radius, h, w)
        img[m] = o.colour
        owner[m] = o.gt_id
    boxes = []
    for o in objs:
        ys, xs = np.nonzero(owner == o.gt_id)
        if len(xs) >= 20:
            boxes.append(GtBox(frame, o.gt_id, o.label, (int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                                                          int(ys.max()) + 1)))
    return img, boxes


def write_video(path: Path, frames, *, fps: int = 25, codec: str = "libx264", times: Optional[Sequence[float]] = None,
                rotation: int = 0) -> None:
    """Encode RGB frames (``times``: presentation times in seconds, for variable frame rates)."""
    import av

    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            s.options = {"crf": "8"}
        if times is not None:
            s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            s.set_display_rotation(rotation)
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i if times is None else int(round(times[i] * 1000))
            if times is not None:
                vf.time_base = Fraction(1, 1000)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _line(x0, y0, x1, y1, start, end):
    def at(f):
        if not start <= f < end:
            return None
        t = (f - start) / max(1, end - 1 - start)
        return x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
    return at


def tracking_video(path: Path, *, cut: int = 50, total: int = 80, size=(192, 128)) -> list[GtBox]:
    """Write the tracking benchmark video to ``path``; returns its ground truth (see the module docstring)."""
    w, h = size
    red, orange = PALETTE["circle"]
    shot1 = [
        Obj(1, "circle", red, 13, _line(15, 40, 175, 62, 0, cut)),
        Obj(2, "circle", orange, 13, _line(175, 72, 15, 50, 0, cut)),
        Obj(3, "triangle", PALETTE["triangle"][0], 12, _line(60, 110, 130, 30, 0, cut)),
        Obj(4, "square", PALETTE["square"][0], 10,
            lambda f: None if not f < cut else (150 + 3 * f, 100) if f < 16 else (None if f < 30 else
                                                                                  (205 - 3 * (f - 30), 100))),
    ]
    shot1 = [o if o.gt_id != 4 else Obj(4, o.label, o.colour, o.radius,
                                        lambda f, p=o.path: (lambda c: c if c is not None and c[0] < w + 8 else None)(
                                            p(f))) for o in shot1]
    shot2 = [
        Obj(11, "circle", red, 12, _line(30, 30, 160, 90, cut, total)),
        Obj(12, "triangle", PALETTE["triangle"][0], 14, _line(160, 40, 40, 100, cut, total)),
        Obj(13, "square", PALETTE["square"][0], 11, _line(100, 100, 100, 25, cut, total)),
    ]
    frames, gt = [], []
    for f in range(total):
        objs, bg = (shot1, (128, 128, 128)) if f < cut else (shot2, (20, 60, 70))
        img, boxes = render(objs, f, size, bg)
        frames.append(img)
        gt += boxes
    write_video(path, frames)
    return gt


def gt_tracks(gt: Sequence[GtBox]) -> dict[int, str]:
    return {g.gt_id: g.label for g in gt}
