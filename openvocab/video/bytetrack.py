"""``ByteTrackTracker``: boxes only, the pipeline on every sampled frame, IDs from Roboflow's ``trackers`` library.

ByteTrack itself is the maintained ``trackers.ByteTrackTracker`` (Kalman-predicted boxes, two-stage IoU
association of high- then low-confidence detections); this adapter adds what a labeling job needs around it:

* **one ByteTrack per class**: a box is only ever associated with tracks of its own label, so an ID never continues
  on an object of another class (a circle's ID never moves to a triangle crossing it);
* **video-wide IDs**: each class tracker's IDs are mapped to the video's own counter, so IDs are unique in the
  video whatever the classes;
* **scene cuts** end every track (the class trackers are dropped and built again);
* **timestamps**: each frame's presentation time is handed to ByteTrack, so a variable frame rate or a sampling
  with gaps ages lost tracks by time, not by frame count;
* boxes ByteTrack leaves untracked (tracker id ``-1``: below ``track_activation_threshold``, or before
  ``minimum_consecutive_frames``) are dropped; ``trackers`` gives a new track its ID when a box continues it, so
  a track's first frame has no box (ByteTrack's confirmation); the kept ones keep their label, score and mask (if the pipeline has a
  mask head or segmenter) and their region concepts/captions.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..registry import TRACKERS
from ..structures import ImageResult
from .source import Frame
from .structures import Tracks, VideoInfo
from .tracking import VideoTracker


def _trackers_lib():
    try:
        import trackers
    except ImportError as e:
        raise ImportError(f"the bytetrack tracker needs Roboflow's trackers library ({e}): "
                          "pip install 'openvocab[video]'") from None
    return trackers


@TRACKERS.register_module()
class ByteTrackTracker(VideoTracker):
    """ByteTrack on the detector's boxes of every sampled frame (see the module docstring).

    Args:
        lost_track_buffer: how long a lost track waits to be found again, in frames at 30 fps (ByteTrack's unit;
            with timestamps it is ``lost_track_buffer / 30`` seconds).
        track_activation_threshold: the least score of a box that starts a track.
        minimum_consecutive_frames: frames a track must be seen in a row before it gets an ID.
        minimum_iou_threshold: the least IoU of a box with a track's predicted box to continue it.
        high_conf_det_threshold: boxes at or above it are matched first; the others only continue lost tracks.
    """

    keyframe_interval = 1
    keyframe_steps = "run"

    def __init__(self, *, lost_track_buffer: int = 30, track_activation_threshold: float = 0.3,
                 minimum_consecutive_frames: int = 1, minimum_iou_threshold: float = 0.1,
                 high_conf_det_threshold: float = 0.4) -> None:
        super().__init__()
        if isinstance(lost_track_buffer, bool) or not isinstance(lost_track_buffer, int) or lost_track_buffer < 0:
            raise ValueError(f"lost_track_buffer must be an int >= 0, got {lost_track_buffer!r}")
        if isinstance(minimum_consecutive_frames, bool) or not isinstance(minimum_consecutive_frames, int) \
                or minimum_consecutive_frames < 1:
            raise ValueError(f"minimum_consecutive_frames must be an int >= 1, got {minimum_consecutive_frames!r}")
        for name, v in (("track_activation_threshold", track_activation_threshold),
                        ("minimum_iou_threshold", minimum_iou_threshold),
                        ("high_conf_det_threshold", high_conf_det_threshold)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        self.lost_track_buffer = lost_track_buffer
        self.track_activation_threshold = float(track_activation_threshold)
        self.minimum_consecutive_frames = minimum_consecutive_frames
        self.minimum_iou_threshold = float(minimum_iou_threshold)
        self.high_conf_det_threshold = float(high_conf_det_threshold)
        self._by_class: dict[str, object] = {}
        self._ids: dict[tuple[str, int], int] = {}
        self._rate = 30.0

    def setup(self, device: str = "cpu") -> None:
        _trackers_lib()

    def start_video(self, info: VideoInfo, tags=()) -> None:
        self._rate = float(info.fps) if info.fps and info.fps > 0 else 30.0
        super().start_video(info, tags)

    def start_shot(self) -> None:
        self._by_class, self._ids = {}, {}

    def _class_tracker(self, label: str):
        tracker = self._by_class.get(label)
        if tracker is None:
            tracker = self._by_class[label] = _trackers_lib().ByteTrackTracker(
                lost_track_buffer=self.lost_track_buffer, frame_rate=self._rate,
                track_activation_threshold=self.track_activation_threshold,
                minimum_consecutive_frames=self.minimum_consecutive_frames,
                minimum_iou_threshold=self.minimum_iou_threshold,
                high_conf_det_threshold=self.high_conf_det_threshold)
        return tracker

    def track(self, frame: Frame, result: Optional[ImageResult]) -> Tracks:
        import supervision as sv

        if result is None:
            raise ValueError("ByteTrackTracker needs the pipeline's boxes on every frame (keyframe_interval 1)")
        dets = result.detections
        labels = np.asarray(dets.labels, dtype=object)
        keep: list[tuple[int, int]] = []
        for label in sorted(set(dets.labels) | set(self._by_class)):
            idx = np.flatnonzero(labels == label) if len(labels) else np.zeros(0, np.int64)
            found = sv.Detections(xyxy=dets.boxes[idx].astype(np.float32).reshape(-1, 4),
                                  confidence=dets.scores[idx].astype(np.float32),
                                  data={"index": idx.astype(np.int64)})
            out = self._class_tracker(label).update(found, timestamp=float(frame.time))
            index = out.data.get("index", np.zeros(0, np.int64)) if len(out) else np.zeros(0, np.int64)
            for i, tid in zip(np.asarray(index).tolist(), np.asarray(out.tracker_id).tolist()):
                if tid >= 0:
                    key = (label, int(tid))
                    if key not in self._ids:
                        self._ids[key] = self.new_id()
                    keep.append((int(i), self._ids[key]))
        keep.sort()
        order = [i for i, _ in keep]
        tracks = Tracks(result.detections, result.regions, np.arange(1, len(dets) + 1)) if len(dets) else Tracks()
        picked = tracks.select(order) if len(dets) else tracks
        return Tracks(picked.detections, picked.regions, np.asarray([t for _, t in keep], np.int64))
