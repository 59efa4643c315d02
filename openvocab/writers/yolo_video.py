"""YOLO / YOLO-seg datasets of the sampled frames of the job's videos: ``yolo_video/`` and ``yolo_seg_video/``.

The layout is the image datasets' (:mod:`.yolo`: ``data.yaml``, ``images/{train,val}/``, ``labels/{train,val}/``),
with each sampled frame written as a JPEG, ``<video stem>_<frame:06d>.jpg`` (frame 0-based among the sampled
frames), as the video is decoded. A whole video goes to one split (by a hash of its name relative to the image root,
:func:`openvocab.image_root.split_of`), so near-identical frames of one video never land on both sides. Label files
follow the job's class list and are written at the end of the job from its record.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image

from ..image_root import relative_name, split_of
from ..registry import WRITERS
from ..video.structures import RecordedVideo, TrackedFrame, VideoInfo
from .base import atomic_write_bytes, atomic_write_text, make_dirs, plain_name
from .video import VideoWriter, class_ids
from .yolo import SPLITS, YoloWriter


@WRITERS.register_module()
class YoloVideoWriter(VideoWriter):
    """Writes ``<out>/<subdir>/{data.yaml,images/,labels/}`` from the sampled frames (see the module docstring).

    Args:
        subdir: folder inside the output folder.
        segments: mask polygons instead of boxes (YOLO-seg).
        val_fraction: share of videos in the ``val`` split, in ``[0, 1]``.
        epsilon: polygon simplification tolerance in pixels.
        quality: JPEG quality of the frames, ``1..95``.
    """

    per_frame = True
    needs_image = True

    def __init__(self, *, subdir: str = "yolo_video", segments: bool = False, val_fraction: float = 0.1,
                 epsilon: float = 1.0, quality: int = 95) -> None:
        super().__init__()
        self.subdir = plain_name(subdir, "subdir")
        if not 1 <= quality <= 95:
            raise ValueError(f"quality must be in 1..95, got {quality}")
        self._lines = YoloWriter(subdir=subdir, segments=segments, val_fraction=val_fraction, epsilon=epsilon)
        self.segments, self.val_fraction, self.quality = bool(segments), float(val_fraction), int(quality)

    @property
    def root(self) -> Path:
        return self.out_dir / self.subdir

    def _open(self) -> None:
        for split in SPLITS:
            make_dirs(self.out_dir, self.subdir, "labels", split)
            make_dirs(self.out_dir, self.subdir, "images", split)

    def split(self, video: VideoInfo) -> str:
        root = self.context.image_root
        rel = None if root is None else relative_name(video.file, root)
        return split_of(video.file if rel is None else rel, self.val_fraction)

    def _path(self, video: VideoInfo, kind: str, index: int) -> Path:
        ext = "jpg" if kind == "images" else "txt"
        return self.root / kind / self.split(video) / f"{plain_name(video.name, 'a video name')}_{index:06d}.{ext}"

    def write_frame(self, video: VideoInfo, frame: TrackedFrame, image: Optional[np.ndarray]) -> None:
        if image is None:
            raise ValueError(f"{video.file}: YoloVideoWriter needs the frames' pixels")
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=self.quality)
        atomic_write_bytes(self._path(video, "images", frame.index), buf.getvalue())

    def has_frames(self, video: RecordedVideo) -> bool:
        n = int(video.summary.get("frames", 0))
        return all(self._path(video.info, "images", i).exists() for i in {0, max(n - 1, 0)})

    def finish_videos(self, videos: Callable[[], Iterable[RecordedVideo]], classes: Sequence[str]) -> None:
        ids = class_ids(classes, videos)
        self._lines.classes = dict(ids)
        counts = dict.fromkeys(SPLITS, 0)
        for video in videos():
            split = self.split(video.info)
            for other in SPLITS:  # a video whose split changed (another val_fraction): its old files go
                if other != split:
                    self._drop(video, other)
            for frame in video.frames():
                counts[split] += 1
                lines = self._lines.lines(frame.result)
                atomic_write_text(self._path(video.info, "labels", frame.index), "".join(x + "\n" for x in lines))
        names = sorted(ids, key=ids.get)
        val = "images/val" if counts["val"] else "images/train"
        text = [f"# YOLO{'-seg' if self.segments else ''} dataset of video frames written by openvocab: "
                f"{counts['train']} train and {counts['val']} val frames (one split per video)"
                + ("" if counts["val"] else "; no video fell in val: val = train") + ".",
                "# Paths are relative to this file's folder (no 'path' key): yolo train data=<this file>.",
                "train: images/train", f"val: {val}", f"nc: {len(names)}", "names:" if names else "names: {}"]
        text += [f"  {i}: {json.dumps(n, ensure_ascii=False)}" for i, n in enumerate(names)]
        atomic_write_text(self.root / "data.yaml", "\n".join(text) + "\n")
        super().finish_videos(videos, classes)

    def _drop(self, video: RecordedVideo, split: str) -> None:
        prefix = f"{video.info.name}_"
        for kind in ("images", "labels"):
            folder = self.root / kind / split
            for entry in os.scandir(folder):
                if entry.name.startswith(prefix) and entry.name[len(prefix):-4].isdigit():
                    os.unlink(entry.path)
