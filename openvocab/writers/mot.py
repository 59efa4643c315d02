"""MOT Challenge layout per video: ``mot/<video stem>/gt/gt.txt`` and ``mot/<video stem>/seqinfo.ini``.

``gt.txt`` has one line per box, frames in order, ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,class,visibility``:
``frame`` is 1-based among the sampled frames (frame 1 is the first sampled frame), ``id`` the track ID (unique in
the video, never on two classes, never across a scene cut), the box in pixels of the displayed frame with MOT's
1-based coordinates (the top-left pixel is ``(1, 1)``: ``bb_left`` is openvocab's ``x1 + 1``), ``conf`` 1
(MOT's "consider" flag; scores are in ``coco_video.json``), ``class`` the job's class id (line ``class - 1`` of
``classes.txt``, COCO's category id) and ``visibility`` 1. ``seqinfo.ini`` names the sequence, its frame rate
(the sampled frames'), length and frame size, as TrackEval and motmetrics read it. A sequence's frames are not
written (``imDir`` names where they would go). Rendered from the job record at the end of the job.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

from ..registry import WRITERS
from ..video.structures import RecordedVideo
from .base import atomic_open, atomic_write_text, make_dirs, plain_name
from .video import VideoWriter, class_ids


@WRITERS.register_module()
class MotWriter(VideoWriter):
    """Writes ``<out>/<subdir>/<video stem>/{gt/gt.txt,seqinfo.ini}`` (see the module docstring)."""

    def __init__(self, *, subdir: str = "mot") -> None:
        super().__init__()
        self.subdir = plain_name(subdir, "subdir")

    def _open(self) -> None:
        make_dirs(self.out_dir, self.subdir)

    def finish_videos(self, videos: Callable[[], Iterable[RecordedVideo]], classes: Sequence[str]) -> None:
        ids = class_ids(classes, videos)
        for video in videos():
            info = video.info
            seq = make_dirs(self.out_dir, self.subdir, plain_name(info.name, "a video's name"))
            gt = make_dirs(seq, "gt")
            with atomic_open(gt / "gt.txt", "w") as f:
                for frame in video.frames():
                    dets = frame.result.detections
                    for box, tid, label in zip(dets.boxes, frame.track_ids, dets.labels):
                        x1, y1, x2, y2 = (float(v) for v in box)
                        f.write(f"{frame.index + 1},{int(tid)},{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,"
                                f"{ids[label] + 1},1\n")
            atomic_write_text(seq / "seqinfo.ini", "\n".join([
                "[Sequence]", f"name={info.name}", "imDir=img1", f"frameRate={info.fps:g}",
                f"seqLength={int(video.summary.get('frames', 0))}", f"imWidth={info.width}", f"imHeight={info.height}",
                "imExt=.jpg", ""]))
        super().finish_videos(videos, classes)
