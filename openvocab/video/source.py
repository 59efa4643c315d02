"""Reading a video as a stream of sampled frames (PyAV): one frame in memory at a time, whatever the video's length.

* **Which files are videos**: by content (:func:`sniff`: the MP4/MOV ``ftyp`` box, Matroska/WebM's EBML header,
  AVI's RIFF header), else by extension (:data:`openvocab.inputs.VIDEO_EXTENSIONS`), so a file named ``clip.mp4``
  that is empty or corrupt fails as a video, with one line saying why.
* **Rotation**: a phone's display matrix is applied (``VideoFrame.rotation``, counter-clockwise degrees), so
  frames, sizes and boxes are those of the displayed picture, as EXIF orientation is for images.
* **Sampling** (:class:`Sampling`): ``fps=F`` keeps the first frame of every ``1/F`` second of presentation time
  (timestamps, so variable frame rate videos are sampled evenly in time); ``stride=N`` keeps every ``N``-th decoded
  frame; neither keeps every frame. Each kept frame has its index among the kept ones (``index``, 0-based), its
  decoded frame number (``source_index``) and its time in seconds from the first frame (``time``).
* **Bad files** raise :class:`VideoLoadError` (``str``: ``"<file>: <message>"``): missing, empty, not a video,
  truncated, audio only, corrupt data met while decoding.
"""
from __future__ import annotations

import math
import os
import queue
import threading
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from ..inputs import VIDEO_EXTENSIONS

_STOP = object()


class VideoLoadError(Exception):
    """A video that cannot be read (``str(e)`` is ``"<file>: <message>"``; :attr:`message` without the file)."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file, self.message = file, message


def sniff(path: str) -> Optional[str]:
    """The container a file's first bytes announce (``"mp4"``, ``"matroska"``, ``"avi"``), else ``None``."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


def is_video_file(path: str) -> bool:
    """Whether ``path`` is read as a video: its content says so, or its extension does."""
    return sniff(path) is not None or os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Sampling:
    """Which decoded frames are labeled: ``fps`` (frames per second of presentation time) or ``stride`` (every
    N-th frame), and at most ``max_frames`` of them (``None``: all)."""

    fps: Optional[float] = None
    stride: Optional[int] = None
    max_frames: Optional[int] = None

    def __post_init__(self) -> None:
        if self.fps is not None and (isinstance(self.fps, bool) or not math.isfinite(self.fps) or self.fps <= 0):
            raise ValueError(f"fps must be a number > 0, got {self.fps!r}")
        if self.stride is not None and (isinstance(self.stride, bool) or not isinstance(self.stride, int)
                                        or self.stride < 1):
            raise ValueError(f"stride must be an int >= 1, got {self.stride!r}")
        if self.fps is not None and self.stride not in (None, 1):
            raise ValueError("give either fps or stride, not both")
        if self.max_frames is not None and (not isinstance(self.max_frames, int) or self.max_frames < 1):
            raise ValueError(f"max_frames must be an int >= 1 or None, got {self.max_frames!r}")

    def to_dict(self) -> dict:
        return {"fps": self.fps, "stride": self.stride or 1, "max_frames": self.max_frames}

    def rate(self, source_fps: float) -> float:
        """The nominal rate of the sampled frames, frames per second."""
        if self.fps is not None:
            return min(float(self.fps), source_fps) if source_fps > 0 else float(self.fps)
        return source_fps / (self.stride or 1) if source_fps > 0 else 0.0


@dataclass(frozen=True)
class StreamInfo:
    """A video stream as displayed: size after rotation, nominal frame rate, duration and frame count (``0``:
    unknown), codec."""

    width: int
    height: int
    rotation: int
    fps: float
    duration: Optional[float]
    frames: int
    codec: str


@dataclass(frozen=True)
class Frame:
    """One sampled frame: RGB ``uint8 [H, W, 3]`` as displayed, its index among the sampled frames, its decoded
    frame number and its time in seconds from the video's first frame."""

    index: int
    source_index: int
    time: float
    image: np.ndarray


def _av():
    try:
        import av
    except ImportError as e:
        raise ImportError(f"videos are decoded by PyAV, which is not installed ({e}): "
                          "pip install 'openvocab[video]'") from None
    return av


def _error_text(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text.split(": '")[0] if "Invalid data" in text else text


class VideoSource:
    """The sampled frames of one video file (see the module docstring).

    Args:
        path: the file.
        sampling: which frames.
        max_pixels: refuse a video whose frames have more pixels than this.
        prefetch: frames decoded ahead on a background thread (``0``: decode in the caller's thread).
    """

    def __init__(self, path: str, *, sampling: Sampling = Sampling(), max_pixels: Optional[int] = None,
                 prefetch: int = 4) -> None:
        self.path, self.sampling, self.max_pixels, self.prefetch = os.fspath(path), sampling, max_pixels, prefetch
        self._container = None
        self._decoded = None
        self._first = None
        self.info: Optional[StreamInfo] = None

    def open(self) -> StreamInfo:
        """Open the file and read its video stream's header (:class:`VideoLoadError` for a bad file)."""
        av = _av()
        path = self.path
        if os.path.isdir(path):
            raise VideoLoadError(path, "is a folder, not a video file")
        try:
            size = os.path.getsize(path)
        except OSError as e:
            raise VideoLoadError(path, f"cannot read file: {e.strerror or e}") from None
        if size == 0:
            raise VideoLoadError(path, "empty file (0 bytes)")
        try:
            container = av.open(path, metadata_errors="ignore")
        except av.error.FFmpegError as e:
            raise VideoLoadError(path, f"not a readable video (truncated or corrupt?): {_error_text(e)}") from None
        except (OSError, ValueError) as e:
            raise VideoLoadError(path, f"cannot open: {_error_text(e)}") from None
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            container.close()
            what = "audio only" if kinds == ["audio"] else f"streams: {', '.join(kinds) or 'none'}"
            raise VideoLoadError(path, f"no video stream ({what})")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = container.decode(stream)
        try:
            first = next(decoded, None)
        except av.error.FFmpegError as e:
            container.close()
            raise VideoLoadError(path, f"corrupt video data: {_error_text(e)}") from None
        if first is None:
            container.close()
            raise VideoLoadError(path, "no frame could be decoded (truncated or corrupt video)")
        rotation = int(round((first.rotation or 0) / 90)) * 90 % 360
        w, h = (first.height, first.width) if rotation % 180 else (first.width, first.height)
        if self.max_pixels is not None and w * h > self.max_pixels:
            container.close()
            raise VideoLoadError(path, f"video frames too large: {w}x{h} exceeds the limit of {self.max_pixels} "
                                       "pixels (--max-pixels)")
        rate = float(stream.average_rate or stream.guessed_rate or 0.0)
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        self._container, self._decoded, self._first = container, decoded, first
        self.info = StreamInfo(width=int(w), height=int(h), rotation=rotation, fps=rate, duration=duration,
                               frames=int(stream.frames or 0), codec=str(stream.codec_context.name))
        return self.info

    def expected_frames(self) -> Optional[int]:
        """About how many frames :meth:`frames` will give (for a progress bar); ``None``: unknown."""
        info = self.info
        if info is None:
            return None
        s = self.sampling
        if s.fps is not None and info.duration:
            n = int(math.ceil(info.duration * min(s.fps, info.fps or s.fps)))
        elif info.frames:
            n = int(math.ceil(info.frames / (s.stride or 1)))
        elif info.duration and info.fps:
            n = int(math.ceil(info.duration * info.fps / (s.stride or 1)))
        else:
            return None
        return min(n, s.max_frames) if s.max_frames else n

    def frames(self) -> Iterator[Frame]:
        """The sampled frames in order (:class:`VideoLoadError` when the data is corrupt)."""
        if self._container is None:
            self.open()
        if self.prefetch <= 0:
            yield from self._decode()
            return
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def produce() -> None:
            try:
                for frame in self._decode():
                    while not stop.is_set():
                        try:
                            q.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                item = _STOP
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                item = e
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        thread = threading.Thread(target=produce, name="openvocab-video-decoder", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _STOP:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

    def _decode(self) -> Iterator[Frame]:
        av = _av()
        s, info = self.sampling, self.info
        kept, t0, last_bin = 0, None, -1
        n = -1
        first, self._first = self._first, None
        try:
            for n, vf in enumerate(_chain(first, self._decoded)):
                t = vf.time
                if t is None:
                    t = n / info.fps if info.fps else float(n)
                t0 = t if t0 is None else t0
                rel = max(0.0, float(t - t0))
                if s.fps is not None:
                    b = int(math.floor(rel * s.fps + 1e-6))
                    if b <= last_bin:
                        continue
                    last_bin = b
                elif s.stride and n % s.stride:
                    continue
                image = vf.to_ndarray(format="rgb24")
                k = (round((vf.rotation or 0) / 90)) % 4
                if k:
                    image = np.rot90(image, k)
                yield Frame(index=kept, source_index=n, time=rel, image=np.ascontiguousarray(image))
                kept += 1
                if s.max_frames is not None and kept >= s.max_frames:
                    return
        except av.error.FFmpegError as e:
            raise VideoLoadError(self.path, f"corrupt video data after frame {n + 1}: {_error_text(e)}") from None
        if kept == 0:
            raise VideoLoadError(self.path, "no frame could be decoded (truncated or corrupt video)")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = self._decoded = self._first = None

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _chain(first, rest) -> Iterator:
    if first is not None:
        yield first
    yield from rest
