"""The video side of a labeling job (``openvocab label`` with video inputs; called from :mod:`openvocab.engine.job`).

A video is one input of the job, like an image: it is labeled whole (:func:`openvocab.video.label.label_video`),
its frames are spooled to the job record as they finish (:mod:`.record`), its per-frame outputs (overlay MP4, YOLO
frame pictures) are written as it is decoded, and it counts as finished when its row in the record's ``results``
table is committed, after its last frame. ``--resume`` never redoes a finished video; an unfinished one is redone
from its first frame (its recorded frames and partial files are dropped first), so nothing is duplicated. A bad
file (corrupt, truncated, empty, audio only) or a model failing on one of its frames is one line in
``failures.jsonl`` naming the file, and the job goes on. The aggregate outputs (MOT, COCO video, CVAT tracks, YOLO
labels) are rendered from the record at the end, in input order.

Output formats for videos (``--formats``; the same names as for images where both exist):

==============  =====================================  ===========================
format          videos                                 writer options key
==============  =====================================  ===========================
``mot``         ``mot/<stem>/gt/gt.txt``, seqinfo.ini   ``writers.mot``
``coco``        ``coco_video.json``                    ``writers.coco_video``
``cvat``        ``cvat_video/<stem>/default.xml``      ``writers.cvat_video``
``yolo``        ``yolo_video/``                        ``writers.yolo_video``
``yolo-seg``    ``yolo_seg_video/``                    ``writers.yolo_seg_video``
``--vis``       ``vis_video/<stem>.mp4``               ``writers.vis_video``
==============  =====================================  ===========================
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from .. import hub
from ..errors import UserError
from ..inputs import InputItem
from ..jsonio import dumps
from ..pipeline import Pipeline
from ..registry import TRACKERS, WRITERS
from ..writers.base import WriterContext
from ..writers.video import VideoWriter
from .label import label_video
from .record import VideoRecord
from .source import Sampling, VideoLoadError, VideoSource, is_video_file
from .structures import RecordedVideo, VideoInfo

log = logging.getLogger("openvocab")

#: ``--formats`` name -> the video writer of that format
VIDEO_FORMATS: dict[str, dict] = {
    "mot": dict(type="MotWriter"), "coco": dict(type="CocoVideoWriter"), "cvat": dict(type="CvatVideoWriter"),
    "yolo": dict(type="YoloVideoWriter"), "yolo-seg": dict(type="YoloVideoWriter", subdir="yolo_seg_video", segments=True),
    "vis": dict(type="OverlayVideoWriter"),
}
#: ``--formats`` name -> the key of its video writer's options in a config's ``writers = dict(...)``
OPTION_KEYS = {"mot": "mot", "coco": "coco_video", "cvat": "cvat_video", "yolo": "yolo_video",
               "yolo-seg": "yolo_seg_video", "vis": "vis_video"}
#: formats that only videos have (an image job ignores them)
VIDEO_ONLY_FORMATS = ("mot",)


class VideoJobError(UserError):
    """The job's videos cannot be labeled as asked (one line, exit status 2)."""


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """How a job labels videos: the tracker's config (``None``: :func:`default_tracker`), the frame sampling and
    the scene-cut threshold. From a config's ``tracker = dict(...)`` and ``video = dict(fps=, stride=, scene_cut=,
    max_frames=)`` and the command line's ``--fps``/``--stride`` (:meth:`from_config`)."""

    tracker: Optional[dict] = None
    sampling: Sampling = Sampling()
    scene_cut: Optional[float] = 0.5

    @classmethod
    def from_config(cls, cfg: Any, *, fps: Optional[float] = None, stride: Optional[int] = None) -> "VideoOptions":
        get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: d)
        video = _plain(get("video", None) or {})
        unknown = sorted(set(video) - {"fps", "stride", "scene_cut", "max_frames"})
        if unknown:
            raise VideoJobError(f"video settings {unknown} unknown; the config's video = dict(...) takes fps, "
                                "stride, scene_cut, max_frames")
        if fps is not None or stride is not None:
            video["fps"], video["stride"] = fps, stride
        try:
            sampling = Sampling(fps=video.get("fps"), stride=video.get("stride"), max_frames=video.get("max_frames"))
        except ValueError as e:
            raise VideoJobError(f"video sampling: {e}") from None
        tracker = get("tracker", None)
        return cls(tracker=None if tracker is None else _plain(tracker), sampling=sampling,
                   scene_cut=video.get("scene_cut", 0.5))


def _plain(x: Any) -> Any:
    if hasattr(x, "to_dict"):
        x = x.to_dict()
    return {k: _plain(v) for k, v in x.items()} if isinstance(x, dict) else x


def default_tracker(pipeline: Pipeline) -> dict:
    """SAM 2 (masks propagated from keyframes) when the pipeline has a mask head, else ByteTrack (boxes)."""
    return dict(type="Sam2VideoTracker") if pipeline.mask_head is not None else dict(type="ByteTrackTracker")


def build_tracker(cfg: dict):
    try:
        return TRACKERS.build(dict(cfg))
    except (KeyError, ValueError, TypeError) as e:
        raise VideoJobError(f"tracker {dict(cfg)}: {e}") from None


class VideoJob:
    """A job's videos: writers, tracker, record (see the module docstring).

    Args:
        formats: the job's ``--formats`` names (``vis`` for ``--vis``); writer_options: per format, by image name
            or by :data:`OPTION_KEYS` name (the video writer takes the latter).
        options: :class:`VideoOptions`.
    """

    def __init__(self, *, formats: Sequence[str], writer_options: Mapping[str, dict],
                 options: Optional[VideoOptions] = None) -> None:
        self.options = options or VideoOptions()
        self.writers: list[VideoWriter] = []
        for name in formats:
            if name not in VIDEO_FORMATS:
                continue
            opts = {**VIDEO_FORMATS[name], **dict(writer_options.get(OPTION_KEYS[name]) or {})}
            try:
                self.writers.append(WRITERS.build(opts))
            except (TypeError, ValueError, KeyError, ImportError) as e:
                given = {k: v for k, v in opts.items() if k != "type"}
                raise VideoJobError(f"writer {OPTION_KEYS[name]!r} ({opts['type']}, options {given}): {e}") from None
        self.videos: list[InputItem] = []
        self.tracker = None
        self.tracker_files: list = []
        self.record: Optional[VideoRecord] = None
        self.frames_labeled = 0

    # ------------------------------------------------------------------ before the job
    def split(self, items: Sequence[InputItem]) -> list[InputItem]:
        """``items`` that are images (the videos are kept in :attr:`videos`)."""
        self.videos = [i for i in items if is_video_file(i.file)]
        keys = {i.key for i in self.videos}
        return [i for i in items if i.key not in keys]

    def outputs(self) -> list[str]:
        """The entries the video writers make in the output folder (none when the job has no video)."""
        return [n for w in self.writers for n in w.outputs()] if self.videos else []

    def setup(self, pipeline: Pipeline) -> None:
        """Build the tracker and load its weights (a missing checkpoint stops the job here)."""
        if not self.videos:
            return
        self.tracker = build_tracker(self.options.tracker or default_tracker(pipeline))
        with hub.recording() as files:
            try:
                self.tracker.setup(pipeline.device)
            except ValueError as e:
                raise VideoJobError(f"cannot set up the tracker: {e}") from None
        self.tracker_files = [(Path(p).name, Path(p).stat().st_size) for _, p in files]

    def settings(self) -> dict:
        """What makes two runs label videos the same way (kept in the job record; ``--resume`` must match it)."""
        return {"sampling": self.options.sampling.to_dict(), "scene_cut": self.options.scene_cut,
                "tracker": json.loads(dumps(self.tracker.describe() if self.tracker else self.options.tracker)),
                "tracker_files": sorted([list(f) for f in self.tracker_files])}

    def check_resume(self, recorded: Optional[dict]) -> None:
        """:class:`VideoJobError` listing what differs from the recorded video settings (``None``: nothing recorded)."""
        if not self.videos or not recorded:
            return
        mine = self.settings()
        changed = [f"video {k}: {recorded.get(k)!r} -> {mine[k]!r}" for k in mine if recorded.get(k) != mine[k]]
        if changed:
            raise VideoJobError("cannot resume: the videos were labeled with other settings:\n  - "
                                + "\n  - ".join(changed) + "\n  Resume with the original settings, or use "
                                "--overwrite to start over.")

    def open(self, out: Path, context: WriterContext) -> None:
        if not self.videos:
            return
        self.record = VideoRecord(out)
        for w in self.writers:
            try:
                w.open(out, context=context)
            except (TypeError, ValueError, KeyError, ImportError) as e:
                raise VideoJobError(f"writer {type(w).__name__}: {e}") from None

    # ------------------------------------------------------------------ labeling
    def run(self, pipeline: Pipeline, todo: Sequence[InputItem], sink, *, batch_size: int, workers: int,
            max_pixels: Optional[int], progress: bool) -> None:
        """Label every video of ``todo``; each finishes in ``sink`` (its record row) or fails there (one line)."""
        from tqdm import tqdm

        for item in todo:
            source = self._source(item, workers=workers, max_pixels=max_pixels)
            try:
                stream = source.open()
            except VideoLoadError as e:
                sink.failure(item, e.message)
                continue
            finally:
                source.close()
            info = VideoInfo(file=item.file, name=item.name, width=stream.width, height=stream.height,
                             fps=self.options.sampling.rate(stream.fps), source_fps=stream.fps,
                             rotation=stream.rotation, duration=stream.duration, codec=stream.codec)
            bar = tqdm(total=source.expected_frames(), unit="frame", desc=item.name[:40], disable=not progress,
                       leave=False, dynamic_ncols=True, position=1, smoothing=0.1)
            try:
                self._label(pipeline, item, info, sink, bar, batch_size=batch_size, workers=workers,
                            max_pixels=max_pixels)
            finally:
                bar.close()

    def _source(self, item: InputItem, *, workers: int, max_pixels: Optional[int]) -> VideoSource:
        return VideoSource(item.file, sampling=self.options.sampling, max_pixels=max_pixels,
                           prefetch=4 if workers > 0 else 0)

    def _label(self, pipeline: Pipeline, item: InputItem, info: VideoInfo, sink, bar, *, batch_size: int,
               workers: int, max_pixels: Optional[int]) -> None:
        from ..outdir import OutputError
        from ..engine.state import StateError

        record, writers = self.record, self.writers
        record.clear(item.key)
        at = {"frame": 0}

        def emit(frame, image) -> None:
            at["frame"] = frame.index
            record.add(item.key, frame)
            for w in writers:
                if w.per_frame:
                    w.write_frame(info, frame, image if w.needs_image else None)
            bar.update(1)

        for w in writers:
            w.begin_video(info)
        try:
            summary = label_video(pipeline, self.tracker, lambda: self._source(item, workers=workers,
                                                                                max_pixels=max_pixels),
                                  info, emit=emit, scene_cut=self.options.scene_cut, batch_size=batch_size)
            record.commit()
            for w in writers:
                w.end_video(info)
        except (OutputError, StateError, KeyboardInterrupt, SystemExit, MemoryError):
            self._abort(info)
            raise
        except VideoLoadError as e:
            self._abort(info)
            record.clear(item.key)
            sink.failure(item, e.message)
            return
        except Exception as e:  # noqa: BLE001 - a model failing on a frame: the video fails alone
            self._abort(info)
            record.clear(item.key)
            sink.failure(item, f"pipeline error at frame {at['frame']}: {type(e).__name__}: {e}")
            return
        self.frames_labeled += summary.frames
        sink.record(item, dumps({"file": item.file, "video": {"info": info.to_dict(), "summary": summary.to_dict()}}))

    def _abort(self, info: VideoInfo) -> None:
        for w in self.writers:
            try:
                w.abort_video(info)
            except OSError:
                pass

    # ------------------------------------------------------------------ outputs
    def finished(self, state) -> list[RecordedVideo]:
        """The job's finished videos in input order, as the record holds them."""
        out = []
        for item in self.videos:
            text = state.result_json(item.key)
            data = json.loads(text) if text is not None else {}
            if "video" not in data:
                continue
            info = dataclasses.replace(VideoInfo.from_dict(data["video"]["info"]), file=item.file, name=item.name)
            out.append(RecordedVideo(info=info, summary=data["video"]["summary"],
                                     frames=lambda key=item.key: self.record.frames(key)))
        return out

    def classes(self, state, classes: Optional[Sequence[str]], image_labels) -> Optional[list[str]]:
        """The job's class list: ``classes`` (else the images' labels, sorted), then labels only videos have."""
        if not self.videos or self.record is None:
            return None if classes is None else list(classes)
        found = {label for v in self.finished(state) for label in v.labels}
        if classes is None:
            return sorted(set(image_labels()) | found)
        return list(classes) + sorted(found - set(classes))

    def render(self, state, classes: Optional[Sequence[str]], *, max_pixels: Optional[int] = None,
               replay: bool = True) -> None:
        """Every video writer's outputs, from the record; ``replay``: finished videos missing per-frame files (a
        format added on resume) are decoded again and their recorded frames replayed (not after Ctrl-C)."""
        if not self.videos or self.record is None:
            return
        for video in self.finished(state) if replay else ():
            missing = [w for w in self.writers if w.per_frame and not w.has_frames(video)]
            if missing:
                self._replay(video, missing, max_pixels)
        for w in self.writers:
            w.finish_videos(lambda: iter(self.finished(state)), list(classes or []))
            w.close()

    def _replay(self, video: RecordedVideo, writers: list[VideoWriter], max_pixels: Optional[int]) -> None:
        """Decode a finished video again and hand its recorded frames to ``writers``."""
        source = VideoSource(video.info.file, sampling=self.options.sampling, max_pixels=max_pixels, prefetch=0)
        for w in writers:
            w.begin_video(video.info)
        try:
            with source:
                for frame, recorded in zip(source.frames(), video.frames()):
                    for w in writers:
                        w.write_frame(video.info, recorded, frame.image if w.needs_image else None)
            for w in writers:
                w.end_video(video.info)
        except VideoLoadError as e:
            log.warning("%s: its overlay/frame files are not written (%s)", video.info.file, e.message)
            for w in writers:
                w.abort_video(video.info)

    def close(self) -> None:
        for w in self.writers:
            w.close()
        if self.record is not None:
            self.record.close()
            self.record = None
