"""One video through the pipeline's own steps and a tracker, frame after frame, in flat memory.

Frames are decoded one at a time (:class:`~openvocab.video.source.VideoSource`, a decoder thread ahead of the
models) and gathered into chunks holding at most ``batch_size`` keyframes: the pipeline runs on a chunk's keyframes
as one batch (:meth:`Pipeline.run`, every step; or :meth:`Pipeline.start` + :meth:`Pipeline.tag` for trackers that
only need tags), then the tracker goes through the chunk's frames in order and each labeled frame is handed to
``emit`` and forgotten. Memory holds one chunk of frames (``batch_size * keyframe_interval`` at most) and the
tracker's own window, whatever the video's length.

Keyframes: the first frame of every shot (a scene cut starts a shot, :mod:`.scenes`) and every
``keyframe_interval``-th sampled frame after it. A tracker with ``needs_video_tags`` (SAM 3: the video's tags as
text prompts) gets the union of the boxable tags of every keyframe first, from a pass over the video that runs the
``tag`` step only (with a vocabulary and no tagger, the vocabulary itself, without that pass).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from ..pipeline import Pipeline
from ..structures import ImageInfo, ImageResult, Tags
from .scenes import SceneCutDetector
from .source import Frame, VideoSource
from .structures import TrackedFrame, VideoInfo
from .tracking import VideoTracker


@dataclass
class VideoSummary:
    """What a labeled video held: sampled frames, and per track its label and first/last frame and frame count."""

    frames: int = 0
    cuts: list[int] = field(default_factory=list)
    tracks: dict[int, dict] = field(default_factory=dict)

    def add(self, frame: TrackedFrame) -> None:
        self.frames = max(self.frames, frame.index + 1)
        for tid, label in zip(frame.track_ids.tolist(), frame.result.detections.labels):
            t = self.tracks.get(tid)
            if t is None:
                self.tracks[tid] = {"label": label, "first": frame.index, "last": frame.index, "frames": 1}
            else:
                t["last"], t["frames"] = frame.index, t["frames"] + 1

    @property
    def labels(self) -> list[str]:
        return sorted({t["label"] for t in self.tracks.values()})

    def to_dict(self) -> dict:
        return {"frames": self.frames, "cuts": list(self.cuts),
                "tracks": [{"id": k, **v} for k, v in sorted(self.tracks.items())]}


def _keyframes(frames: Iterator[Frame], interval: int, cuts: SceneCutDetector
               ) -> Iterator[tuple[Frame, bool, bool]]:
    """``(frame, is_keyframe, is_cut)`` for each frame."""
    shot_start = 0
    for frame in frames:
        cut = cuts.is_cut(frame.image)
        if cut:
            shot_start = frame.index
        yield frame, (frame.index - shot_start) % interval == 0, cut


def _infos(video: VideoInfo, frames: Sequence[Frame]) -> list[ImageInfo]:
    return [ImageInfo(file=video.file, width=int(f.image.shape[1]), height=int(f.image.shape[0])) for f in frames]


def video_tags(pipeline: Pipeline, frames: Iterator[Frame], video: VideoInfo, *, interval: int, scene_cut: Optional[float],
               batch_size: int, vocabulary: Optional[Sequence[str]] = None) -> list[str]:
    """The boxable tags of a video's keyframes, in order of first appearance (the ``tag`` step only)."""
    if pipeline.tagger is None and (vocabulary or pipeline.vocabulary):
        return list(vocabulary or pipeline.vocabulary)
    names: dict[str, None] = {}
    batch: list[Frame] = []

    def flush() -> None:
        state = pipeline.start([f.image for f in batch], _infos(video, batch), vocabulary=vocabulary)
        for tags in pipeline.tag(state).tags:
            names.update((t.name, None) for t in tags if t.boxable)
        batch.clear()

    for frame, key, _ in _keyframes(frames, interval, SceneCutDetector(threshold=scene_cut)):
        if key:
            batch.append(frame)
            if len(batch) >= batch_size:
                flush()
    if batch:
        flush()
    return list(names)


def iter_video(pipeline: Pipeline, tracker: VideoTracker, open_source: Callable[[], VideoSource], video: VideoInfo,
               *, scene_cut: Optional[float] = 0.5, batch_size: int = 1, vocabulary: Optional[Sequence[str]] = None
               ) -> Iterator[tuple[TrackedFrame, np.ndarray, bool]]:
    """``(labeled frame, its pixels, whether a scene cut starts it)`` for each sampled frame of the video
    ``open_source()`` reads, in order (see the module docstring). Errors (a bad file, a model failing) propagate."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if tracker.keyframe_steps not in ("run", "tag"):
        raise ValueError(f"{type(tracker).__name__}.keyframe_steps must be 'run' or 'tag'")
    interval = int(tracker.keyframe_interval)
    tags: list[str] = []
    if tracker.needs_video_tags:
        with open_source() as first_pass:
            tags = video_tags(pipeline, first_pass.frames(), video, interval=interval, scene_cut=scene_cut,
                              batch_size=batch_size, vocabulary=vocabulary)
    tracker.start_video(video, tags)
    pending: list[tuple[Frame, bool, bool]] = []
    shot_tags = Tags()

    def flush() -> Iterator[tuple[TrackedFrame, np.ndarray, bool]]:
        nonlocal shot_tags
        keys = [f for f, key, _ in pending if key]
        found: dict[int, ImageResult] = {}
        if keys:
            images, infos = [f.image for f in keys], _infos(video, keys)
            if tracker.keyframe_steps == "run":
                results = pipeline.run(images, infos, vocabulary=vocabulary)
            else:
                state = pipeline.tag(pipeline.start(images, infos, vocabulary=vocabulary))
                results = [ImageResult(image=i, tags=t) for i, t in zip(infos, state.tags)]
            found = {f.index: r for f, r in zip(keys, results)}
        for frame, key, cut in pending:
            if cut:
                tracker.start_shot()
            result = found.get(frame.index)
            if result is not None:
                shot_tags = result.tags
            with pipeline.model_call():  # the tracker's model: the job's precision, and the CPU's turn
                tracks = tracker.track(frame, result)
            info = ImageInfo(file=video.file, width=int(frame.image.shape[1]), height=int(frame.image.shape[0]))
            yield TrackedFrame(index=frame.index, source_index=frame.source_index, time=frame.time, keyframe=key,
                               result=ImageResult(image=info, tags=shot_tags, detections=tracks.detections,
                                                  regions=tracks.regions),
                               track_ids=tracks.ids), frame.image, cut
        pending.clear()

    try:
        with open_source() as source:
            n_keys = 0
            for entry in _keyframes(source.frames(), interval, SceneCutDetector(threshold=scene_cut)):
                pending.append(entry)
                n_keys += entry[1]
                if entry[1] and n_keys >= batch_size:
                    yield from flush()
                    n_keys = 0
            yield from flush()
    finally:
        tracker.end_video()


def label_video(pipeline: Pipeline, tracker: VideoTracker, open_source: Callable[[], VideoSource], video: VideoInfo,
                *, emit: Callable[[TrackedFrame, np.ndarray], None], scene_cut: Optional[float] = 0.5,
                batch_size: int = 1, vocabulary: Optional[Sequence[str]] = None) -> VideoSummary:
    """:func:`iter_video`, each labeled frame (with its pixels) handed to ``emit``; returns the :class:`VideoSummary`."""
    summary = VideoSummary()
    for frame, image, cut in iter_video(pipeline, tracker, open_source, video, scene_cut=scene_cut,
                                        batch_size=batch_size, vocabulary=vocabulary):
        if cut:
            summary.cuts.append(frame.index)
        summary.add(frame)
        emit(frame, image)
    return summary
