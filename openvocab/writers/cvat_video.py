"""CVAT for video 1.1 (tracks), exported by Datumaro: ``cvat_video/<video stem>/default.xml``.

Each video becomes one CVAT task's annotations: a ``<track>`` per track ID with its label and a ``<box>`` per frame
it is on (``frame`` 0-based among the sampled frames, ``keyframe="1"``), and a closing box with ``outside="1"`` on
the frame after each of its runs of frames (the frame it leaves, or comes back after a gap), so CVAT does not
stretch a track over frames it is not on. Boxes only: masks are in ``coco_video.json`` (Datumaro would hold every
mask of a video decoded in memory). Labels: the job's class list. The frames themselves are not written; import the
XML into a CVAT task made from the sampled frames (``--fps``/``--stride`` as in the job), or from the video when
every frame was labeled.

Datumaro builds each video's dataset in memory (its boxes only, about a hundred bytes each), one video at a time.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..registry import WRITERS
from ..video.structures import RecordedVideo
from .base import make_dirs, plain_name
from .exchange import _datumaro, _replace_folder
from .video import VideoWriter, class_ids


@WRITERS.register_module()
class CvatVideoWriter(VideoWriter):
    """Writes ``<out>/<subdir>/<video stem>/default.xml`` (see the module docstring)."""

    def __init__(self, *, subdir: str = "cvat_video") -> None:
        super().__init__()
        self.subdir = plain_name(subdir, "subdir")

    def _open(self) -> None:
        _datumaro()
        make_dirs(self.out_dir, self.subdir)

    def finish_videos(self, videos: Callable[[], Iterable[RecordedVideo]], classes: Sequence[str]) -> None:
        ids = class_ids(classes, videos)
        for video in videos():
            name = plain_name(video.info.name, "a video's name")
            root = make_dirs(self.out_dir, self.subdir)
            with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}.", suffix=".part") as tmp:
                staged = Path(tmp) / name
                self._export(video, list(ids), staged)
                _replace_folder(staged, root / name)
        super().finish_videos(videos, classes)

    @staticmethod
    def _export(video: RecordedVideo, names: list[str], staged: Path) -> None:
        dm = _datumaro()
        from datumaro.components.annotation import AnnotationType, Bbox, LabelCategories

        label = {n: i for i, n in enumerate(names)}
        info = video.info
        n_frames = int(video.summary.get("frames", 0))
        items: dict[int, list] = {}
        last: dict[int, tuple[int, list, int]] = {}  # track -> (its last frame, that box, its label)

        def close(tid: int, frame: int) -> None:
            end, box, lab = last.pop(tid)
            if frame < n_frames:
                items.setdefault(frame, []).append(Bbox(*box, label=lab, attributes={
                    "track_id": tid, "frame": frame, "outside": True, "keyframe": True, "occluded": False}))

        for frame in video.frames():
            for tid, (tid_end, _, _) in list(last.items()):
                if tid_end < frame.index - 1:  # the track was not on the frame before: it left then
                    close(tid, tid_end + 1)
            dets = frame.result.detections
            for box, tid, lab in zip(dets.boxes, frame.track_ids.tolist(), dets.labels):
                x1, y1, x2, y2 = (float(v) for v in box)
                xywh = [x1, y1, x2 - x1, y2 - y1]
                items.setdefault(frame.index, []).append(Bbox(*xywh, label=label[lab], attributes={
                    "track_id": tid, "frame": frame.index, "outside": False, "keyframe": True, "occluded": False}))
                last[tid] = (frame.index, xywh, label[lab])
        for tid in list(last):
            close(tid, last[tid][0] + 1)
        media = dm.Image.from_file(path=f"{info.name}.jpg", size=(info.height, info.width))
        dataset = dm.Dataset.from_iterable(
            [dm.DatasetItem(id=f"frame_{i:06d}", subset="default", media=media, attributes={"frame": i},
                            annotations=items.get(i, [])) for i in range(n_frames)],
            categories={AnnotationType.label: LabelCategories.from_iterable(names)})
        dataset.export(str(staged), "cvat", save_media=False, use_track=True)
        images = staged / "images"
        if images.is_dir() and not any(images.iterdir()):
            images.rmdir()  # Datumaro makes it for the frames, which are not written
