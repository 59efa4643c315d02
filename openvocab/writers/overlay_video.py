"""Overlay videos: ``vis_video/<video stem>.mp4``, the sampled frames with masks, boxes, track IDs and tags.

Each frame is drawn by the image overlay writer's renderer (:class:`~.overlay.OverlayWriter`: translucent masks,
box outlines, labels that never cover each other, the shot's tags in a corner panel) with ``#<track id>`` before
each label, and encoded by PyAV (H.264 in MP4 by default) as the video is labeled; each frame keeps its own
timestamp, so the overlay plays at the sampled frames' times (variable frame rate included). The file is written as
a temp file beside its final name and renamed into place when the video is done. Frames are scaled to at most
``max_side`` pixels and to even sizes (H.264's 4:2:0 needs them).
"""
from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from ..registry import WRITERS
from ..structures import ImageResult
from ..video.structures import RecordedVideo, TrackedFrame, VideoInfo
from .base import make_dirs, plain_name
from .overlay import OverlayWriter
from .video import VideoWriter


class _TrackOverlay(OverlayWriter):
    """The image overlay with each box's track ID before its label."""

    track_ids: tuple[int, ...] = ()

    def _label_lines(self, result: ImageResult, i: int) -> list[str]:
        lines = super()._label_lines(result, i)
        if i < len(self.track_ids):
            lines[0] = f"#{self.track_ids[i]} {lines[0]}"
        return lines


@WRITERS.register_module()
class OverlayVideoWriter(VideoWriter):
    """Writes ``<out>/<subdir>/<video stem>.mp4`` (see the module docstring).

    Args:
        subdir: folder inside the output folder.
        codec: PyAV encoder (``libx264``; ``mpeg4`` works everywhere); crf: H.264 quality (lower: better).
        max_side: the longer side of the written frames at most (``None``: the video's size).
        mask_alpha / max_tags / font_size / captions / concepts: as the image overlay's.
    """

    per_frame = True
    needs_image = True

    def __init__(self, *, subdir: str = "vis_video", codec: str = "libx264", crf: int = 23,
                 max_side: Optional[int] = 1280, mask_alpha: float = 0.45, max_tags: int = 10,
                 font_size: Optional[int] = None, captions: bool = True, concepts: int = 1) -> None:
        super().__init__()
        self.subdir = plain_name(subdir, "subdir")
        if not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be an int in 0..51, got {crf!r}")
        self.codec, self.crf = str(codec), crf
        self._draw = _TrackOverlay(subdir=subdir, mask_alpha=mask_alpha, max_tags=max_tags, font_size=font_size,
                                   captions=captions, concepts=concepts, max_side=max_side)
        self._open_videos: dict[str, tuple] = {}

    def _open(self) -> None:
        make_dirs(self.out_dir, self.subdir)

    def path(self, video: VideoInfo) -> Path:
        return self.out_dir / self.subdir / f"{plain_name(video.name, 'a video name')}.mp4"

    def has_frames(self, video: RecordedVideo) -> bool:
        return self.path(video.info).exists()

    def begin_video(self, video: VideoInfo) -> None:
        import av

        self.abort_video(video)
        final = self.path(video)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
        os.close(fd)
        container = av.open(tmp, "w", format="mp4")
        self._open_videos[video.file] = (container, None, tmp, -1)

    def _stream(self, video: VideoInfo, width: int, height: int):
        container, stream, tmp, last = self._open_videos[video.file]
        if stream is None:
            rate = Fraction(video.fps).limit_denominator(1000) if video.fps > 0 else Fraction(25)
            stream = container.add_stream(self.codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)  # each frame's own time
            if self.codec == "libx264":
                stream.options = {"crf": str(self.crf)}
            self._open_videos[video.file] = (container, stream, tmp, last)
        return self._open_videos[video.file]

    def write_frame(self, video: VideoInfo, frame: TrackedFrame, image: Optional[np.ndarray]) -> None:
        import av

        if image is None:
            raise ValueError(f"{video.file}: OverlayVideoWriter needs the frames' pixels")
        self._draw.track_ids = tuple(int(t) for t in frame.track_ids)
        picture = self._draw.render(frame.result, image)
        w, h = picture.size
        if w % 2 or h % 2:
            picture = picture.resize((max(2, w - w % 2), max(2, h - h % 2)), Image.BILINEAR)
        container, stream, tmp, last = self._stream(video, *picture.size)
        pts = max(int(round(frame.time * 1000)), last + 1)
        vf = av.VideoFrame.from_image(picture)
        vf.pts, vf.time_base = pts, Fraction(1, 1000)
        for packet in stream.encode(vf):
            container.mux(packet)
        self._open_videos[video.file] = (container, stream, tmp, pts)

    def end_video(self, video: VideoInfo) -> None:
        entry = self._open_videos.pop(video.file, None)
        if entry is None:
            return
        container, stream, tmp, _ = entry
        try:
            if stream is not None:
                for packet in stream.encode():
                    container.mux(packet)
            container.close()
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.path(video))
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    def abort_video(self, video: VideoInfo) -> None:
        entry = self._open_videos.pop(video.file, None)
        if entry is not None:
            container, _, tmp, _ = entry
            try:
                container.close()
            except Exception:  # noqa: BLE001 - an encoder left half-way: its file goes anyway
                pass
            if os.path.lexists(tmp):
                os.unlink(tmp)

    def _close(self) -> None:
        for file in list(self._open_videos):
            entry = self._open_videos.pop(file)
            try:
                entry[0].close()
            except Exception:  # noqa: BLE001
                pass
            if os.path.lexists(entry[2]):
                os.unlink(entry[2])
