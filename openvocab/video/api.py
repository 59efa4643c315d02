"""Labeling one video from Python (:meth:`openvocab.Labeler.label_video`): the labeled frames as an iterator, in
flat memory, without a job folder (``label_folder`` runs the job, with its outputs and resume)."""
from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from ..pipeline import Pipeline
from .job import VideoOptions, build_tracker, default_tracker
from .label import iter_video
from .source import VideoSource
from .structures import TrackedFrame, VideoInfo


def label_video(pipeline: Pipeline, path: Union[str, os.PathLike], *, options: VideoOptions = VideoOptions(),
                batch_size: int = 1, vocabulary: Optional[Sequence[str]] = None, images: bool = False,
                max_pixels: Optional[int] = None, trackers: Optional[dict] = None
                ) -> Iterator[Union[TrackedFrame, tuple[TrackedFrame, np.ndarray]]]:
    """Each sampled frame of the video at ``path`` labeled and tracked (``images``: with its RGB pixels as
    ``(frame, image)`` pairs). A file that is not a readable video raises
    :class:`openvocab.video.source.VideoLoadError` naming it, before the first frame. ``trackers``: built trackers
    kept between calls (by config), so a tracker's model loads once; one video at a time uses each."""
    file = os.fspath(path)
    cfg = dict(options.tracker or default_tracker(pipeline))
    key = repr(sorted(cfg.items()))
    tracker = (trackers or {}).get(key) or build_tracker(cfg)
    if trackers is not None:
        trackers[key] = tracker
    pipeline.setup()
    tracker.setup(pipeline.device)

    def source() -> VideoSource:
        return VideoSource(file, sampling=options.sampling, max_pixels=max_pixels)

    with source() as probe:
        stream = probe.open()
    video = VideoInfo(file=file, name=os.path.splitext(os.path.basename(file))[0] or "video", width=stream.width,
                      height=stream.height, fps=options.sampling.rate(stream.fps), source_fps=stream.fps,
                      rotation=stream.rotation, duration=stream.duration, codec=stream.codec)
    return _frames(pipeline, tracker, source, video, options, batch_size, vocabulary, images)


def _frames(pipeline, tracker, source, video, options, batch_size, vocabulary, images):
    for frame, image, _ in iter_video(pipeline, tracker, source, video, scene_cut=options.scene_cut,
                                      batch_size=batch_size, vocabulary=vocabulary):
        yield (frame, image) if images else frame
