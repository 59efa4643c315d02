"""The tracker interface (registered in :data:`openvocab.registry.TRACKERS`) and what trackers share.

A tracker turns a video's sampled frames, with the pipeline's results on its keyframes, into tracks. The video
labeler (:mod:`openvocab.video.label`) drives every tracker the same way::

    tracker.setup(device)
    tracker.start_video(info, tags)      # tags: the video's boxable tags (needs_video_tags trackers only)
    for each sampled frame, in order:
        tracker.start_shot()             # at a scene cut (and by start_video): every track ends
        tracks = tracker.track(frame, result)   # result: the pipeline's ImageResult on a keyframe, else None
    tracker.end_video()

Rules every tracker keeps: a track never changes class (its ID never continues on an object of another label),
IDs are unique within a video (:meth:`VideoTracker.new_id`; they start at 1), and no ID survives a scene cut.
Class attributes say what the pipeline must give: :attr:`keyframe_interval` (the pipeline runs on the first frame
of every shot and then every N-th sampled frame; 1: every frame) and :attr:`keyframe_steps` (``"run"``: every
step, boxes and masks; ``"tag"``: tags only, for trackers that find objects themselves from text).
"""
from __future__ import annotations

import abc
from typing import Optional, Sequence

import numpy as np

from ..structures import ImageResult
from .source import Frame
from .structures import Tracks, VideoInfo

KEYFRAME_STEPS = ("run", "tag")


class VideoTracker(abc.ABC):
    """Base of the trackers (see the module docstring)."""

    #: the pipeline runs on every N-th sampled frame of a shot (and on its first)
    keyframe_interval: int = 1
    #: ``"run"``: the pipeline's every step on keyframes; ``"tag"``: its tags only
    keyframe_steps: str = "run"
    #: the tracker needs the video's boxable tags before its first frame (text-prompted trackers)
    needs_video_tags: bool = False

    def __init__(self) -> None:
        self._next_id = 1
        self.video: Optional[VideoInfo] = None

    def setup(self, device: str = "cpu") -> None:
        """Load weights (may download) and move to ``device``. Idempotent."""

    def required_files(self) -> list[str]:
        return []

    def remote_repos(self) -> list:
        return []

    def new_id(self) -> int:
        """The next unused track ID of this video."""
        tid, self._next_id = self._next_id, self._next_id + 1
        return tid

    def start_video(self, info: VideoInfo, tags: Sequence[str] = ()) -> None:
        """A new video begins (IDs start again at 1)."""
        self.video = info
        self._next_id = 1
        self.start_shot()

    @abc.abstractmethod
    def start_shot(self) -> None:
        """A new shot begins: every live track ends."""

    @abc.abstractmethod
    def track(self, frame: Frame, result: Optional[ImageResult]) -> Tracks:
        """The tracks on ``frame`` (``result``: the pipeline's result when ``frame`` is a keyframe, else ``None``)."""

    def end_video(self) -> None:
        """The video is done (free its state)."""
        self.video = None

    def describe(self) -> dict:
        """What makes two runs of this tracker the same (the job's record keeps it)."""
        simple = {k: v for k, v in vars(self).items()
                  if not k.startswith("_") and isinstance(v, (str, int, float, bool, type(None), list, tuple))}
        return {"type": type(self).__name__, **simple}


def check_interval(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"keyframe_interval must be an int >= 1, got {value!r}")
    return value


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a [N, 4]`` with every box of ``b [M, 4]`` (xyxy): ``float64 [N, M]``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def mask_iou(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> np.ndarray:
    """IoU of every boolean mask of ``a`` with every one of ``b`` (same size): ``float64 [N, M]``."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    fa = np.stack([np.asarray(m, bool).reshape(-1) for m in a]).astype(np.float32)
    fb = np.stack([np.asarray(m, bool).reshape(-1) for m in b]).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0).astype(np.float64)


def match(similarity: np.ndarray, labels_a: Sequence[str], labels_b: Sequence[str],
          min_similarity: float) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` maximising the total ``similarity`` (Hungarian), only between equal labels and at least
    ``min_similarity`` each: how a track (row) is matched to a detection (column) without ever changing class."""
    from scipy.optimize import linear_sum_assignment

    sim = np.asarray(similarity, np.float64)
    if not sim.size:
        return []
    same = np.asarray([[la == lb for lb in labels_b] for la in labels_a], bool)
    gated = np.where(same & (sim >= min_similarity), sim, -1.0)
    rows, cols = linear_sum_assignment(gated, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if gated[r, c] >= 0]
