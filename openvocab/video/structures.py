"""Typed data of a labeled video: the video (:class:`VideoInfo`), a tracker's output on one frame (:class:`Tracks`)
and one labeled frame (:class:`TrackedFrame`), with its lossless JSON form for the job record."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..serialize import result_from_dict, result_to_dict
from ..structures import Detections, ImageResult, Instances, Regions


@dataclass(frozen=True)
class VideoInfo:
    """One video of a job.

    Attributes:
        file: the path as the inputs spelled it; name: the stem of its output files (unique in the job).
        width / height: the displayed frame size (rotation applied); rotation: counter-clockwise degrees applied.
        fps: nominal rate of the sampled frames; source_fps: the stream's own; duration: seconds (``None``:
            unknown); codec: the stream's codec.
    """

    file: str
    name: str
    width: int
    height: int
    fps: float
    source_fps: float = 0.0
    rotation: int = 0
    duration: Optional[float] = None
    codec: str = ""

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"{self.file}: bad frame size {self.width}x{self.height}")

    def to_dict(self) -> dict:
        return {"file": self.file, "name": self.name, "width": int(self.width), "height": int(self.height),
                "fps": float(self.fps), "source_fps": float(self.source_fps), "rotation": int(self.rotation),
                "duration": None if self.duration is None else float(self.duration), "codec": self.codec}

    @classmethod
    def from_dict(cls, d: dict) -> "VideoInfo":
        return cls(**{k: d[k] for k in ("file", "name", "width", "height", "fps", "source_fps", "rotation",
                                        "duration", "codec") if k in d})


def _ids(ids: Any) -> np.ndarray:
    arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    if (arr < 1).any():
        raise ValueError(f"track ids must be >= 1, got {arr.tolist()}")
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"track ids of one frame must differ, got {arr.tolist()}")
    return arr


@dataclass(frozen=True)
class Tracks:
    """A tracker's objects on one frame: boxes (and masks), each with its track ID (``int64 [N]``, >= 1, distinct)."""

    detections: Detections = field(default_factory=Detections)
    regions: Optional[Regions] = None
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        ids = _ids(self.ids)
        if len(ids) != len(self.detections) or (self.regions is not None and len(self.regions) != len(ids)):
            raise ValueError(f"Tracks lengths differ: {len(ids)} ids, {len(self.detections)} boxes"
                             + ("" if self.regions is None else f", {len(self.regions)} masks"))
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, index) -> "Tracks":
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        regions = None if self.regions is None else Instances(self.detections, self.regions).select(idx).regions
        return Tracks(self.detections.select(idx), regions, self.ids[idx])


@dataclass(frozen=True)
class TrackedFrame:
    """One labeled frame of a video: where it is (``index`` among the sampled frames, 0-based; ``source_index``:
    decoded frame number; ``time``: seconds from the first frame), whether the pipeline ran on it (``keyframe``),
    what is on it (``result``: the tags of its shot's last keyframe, the tracks' boxes and masks) and the track ID
    of each box (``track_ids``, aligned with ``result.detections``)."""

    index: int
    source_index: int
    time: float
    result: ImageResult
    track_ids: np.ndarray
    keyframe: bool = False

    def __post_init__(self) -> None:
        ids = _ids(self.track_ids)
        if len(ids) != len(self.result.detections):
            raise ValueError(f"frame {self.index}: {len(ids)} track ids for {len(self.result.detections)} boxes")
        object.__setattr__(self, "track_ids", ids)

    def to_dict(self) -> dict:
        return {"index": int(self.index), "source_index": int(self.source_index), "time": float(self.time),
                "keyframe": bool(self.keyframe), "track_ids": [int(i) for i in self.track_ids],
                "result": result_to_dict(self.result)}

    @classmethod
    def from_dict(cls, d: dict) -> "TrackedFrame":
        return cls(index=int(d["index"]), source_index=int(d["source_index"]), time=float(d["time"]),
                   result=result_from_dict(d["result"]), track_ids=np.asarray(d["track_ids"], np.int64),
                   keyframe=bool(d.get("keyframe", False)))


@dataclass(frozen=True)
class RecordedVideo:
    """A finished video as the job's record holds it: its info, its summary (``frames``, ``cuts``, ``tracks``:
    ``[{"id", "label", "first", "last", "frames"}]``) and its frames, read in order each time ``frames()`` is
    called."""

    info: VideoInfo
    summary: dict
    frames: Callable[[], Iterator[TrackedFrame]]

    @property
    def labels(self) -> list[str]:
        return sorted({t["label"] for t in self.summary.get("tracks", [])})
