"""The video writer interface: outputs of labeled videos (MOT, COCO video, CVAT tracks, YOLO frames, overlay MP4).

A job drives every video writer the same way, beside its image writers::

    w.open(out_dir, context=WriterContext(...))
    for each video labeled by this run:
        w.begin_video(video)
        w.write_frame(video, frame, image)   # per-frame writers only (per_frame), in frame order
        w.end_video(video)                   # (abort_video(video) when the video fails: its partial files go)
    w.finish_videos(videos, classes)         # every finished video of the job's inputs, from the job record
    w.close()

Per-frame writers (:attr:`VideoWriter.per_frame`: overlay MP4, YOLO's frame pictures) need the pixels while the
video is decoded; their per-video files are made as temp files and renamed into place by ``end_video``. The others
render everything in ``finish_videos``, streaming each video's frames from the record, so an interrupted and
resumed job writes what one uninterrupted run writes. A finished video whose per-frame files are missing (the
format was added on ``--resume``) is decoded again and its recorded frames replayed through ``write_frame``
(:meth:`VideoWriter.has_frames` says whether that is needed).
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from ..video.structures import RecordedVideo, TrackedFrame, VideoInfo
from .base import Writer


class VideoWriter(Writer):
    """Base class of the video writers (registered in :data:`openvocab.registry.WRITERS`)."""

    #: :meth:`write_frame` is called for every frame of a video being labeled
    per_frame: bool = False
    #: :meth:`write_frame` needs the frame's pixels
    needs_image: bool = False

    def begin_video(self, video: VideoInfo) -> None:
        """A video's first frame is coming."""

    def write_frame(self, video: VideoInfo, frame: TrackedFrame, image: Optional[np.ndarray]) -> None:
        """One labeled frame (per-frame writers)."""

    def end_video(self, video: VideoInfo) -> None:
        """The video's frames are all written: its per-video files go into place."""

    def abort_video(self, video: VideoInfo) -> None:
        """The video failed or the job stopped: its partial files are removed."""

    def has_frames(self, video: RecordedVideo) -> bool:
        """Whether the per-frame files of a finished video are in place (else the job replays its frames)."""
        return True

    def finish_videos(self, videos: Callable[[], Iterable[RecordedVideo]], classes: Sequence[str]) -> None:
        """Write the aggregate outputs: ``videos()`` iterates every finished video of the job's inputs in input
        order (it may be called more than once); ``classes``: the job's class list (COCO id ``i + 1``, YOLO id
        ``i``)."""
        self._finished = True


def class_ids(classes: Sequence[str], videos: Callable[[], Iterable[RecordedVideo]]) -> dict[str, int]:
    """``label -> index`` of the job's class list, labels outside it appended (sorted)."""
    ids = {n: i for i, n in enumerate(classes)}
    for extra in sorted({label for v in videos() for label in v.labels} - set(ids)):
        ids[extra] = len(ids)
    return ids
