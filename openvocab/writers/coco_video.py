"""COCO-style video JSON (``coco_video.json``): the YouTube-VIS / TAO convention, loadable by ``pycocotools``.

* ``videos``: ids ``1..V`` in input order; ``name``/``file_name`` the video's path relative to the image root,
  ``width``/``height`` (displayed), ``length`` (sampled frames), ``fps`` (of the sampled frames);
* ``images``: one per sampled frame, ids ``1..N``: ``video_id``, ``frame_id`` (0-based among the sampled frames,
  TAO's ``frame_index`` too), ``file_name`` ``"<video name>/<frame_id:06d>.jpg"`` (a frame has no file of its own),
  ``time`` (seconds), ``source_index`` (the decoded frame), ``keyframe`` and the shot's ``tags``;
* ``annotations``: as ``coco.json``'s (``bbox``, RLE ``segmentation`` when masks exist, ``area``, ``score``,
  ``category_id``, ``tag``, ``concepts``, ``region_caption``) plus ``video_id`` and ``track_id``;
* ``tracks``: ``{"id", "video_id", "category_id"}``; track ids are unique in the file (a video's track ``k`` is
  ``k`` plus the number of ids the videos before it used), so ``mot/<video>/gt/gt.txt``'s id ``k`` is this file's
  ``k + offset`` of that video;
* ``categories``: the job's class list (``classes.txt``), ids ``1..K``.

Streamed from the job record (annotations go through a temp file), like ``coco.json``: memory stays flat.
"""
from __future__ import annotations

import shutil
import tempfile
from typing import Callable, Iterable, Optional, Sequence

from ..image_root import relative_name
from ..jsonio import dumps
from ..registry import WRITERS
from ..serialize import tag_to_dict
from ..video.structures import RecordedVideo
from .base import atomic_open, plain_name
from .coco import _info, coco_annotations
from .video import VideoWriter, class_ids


@WRITERS.register_module()
class CocoVideoWriter(VideoWriter):
    """Writes ``<out>/<filename>`` (see the module docstring).

    Args:
        filename: output file name inside the output folder.
        indent: JSON indent of the header (``None``: compact); videos, images and annotations are one per line.
    """

    def __init__(self, *, filename: str = "coco_video.json", indent: Optional[int] = None) -> None:
        super().__init__()
        self.filename = plain_name(filename, "filename")
        self.indent = indent

    def _video_name(self, file: str) -> str:
        root = self.context.image_root
        rel = None if root is None else relative_name(file, root)
        return file if rel is None else rel

    def finish_videos(self, videos: Callable[[], Iterable[RecordedVideo]], classes: Sequence[str]) -> None:
        ids = class_ids(classes, videos)
        cat_id = {n: i + 1 for n, i in ids.items()}
        head = {"info": _info(), "licenses": [],
                "categories": [{"id": i + 1, "name": n, "supercategory": "object"} for n, i in ids.items()]}
        path = self.out_dir / self.filename
        tmp = dict(dir=self.out_dir, prefix=f".{self.filename}.", suffix=".part", mode="w+", encoding="utf-8")
        with tempfile.TemporaryFile(**tmp) as images, tempfile.TemporaryFile(**tmp) as anns, \
                tempfile.TemporaryFile(**tmp) as tracks, atomic_open(path, "w") as out:
            out.write(dumps(head, indent=self.indent)[:-1].rstrip() + ',\n"videos": [')
            n_img = n_ann = offset = n_trk = 0
            for video_id, video in enumerate(videos(), start=1):
                info, name = video.info, self._video_name(video.info.file)
                out.write(("\n" if video_id == 1 else ",\n") + dumps({
                    "id": video_id, "name": name, "file_name": name, "width": info.width, "height": info.height,
                    "length": int(video.summary.get("frames", 0)), "fps": info.fps}))
                for frame in video.frames():
                    n_img += 1
                    r = frame.result
                    images.write(("\n" if n_img == 1 else ",\n") + dumps({
                        "id": n_img, "video_id": video_id, "frame_id": frame.index, "frame_index": frame.index,
                        "file_name": f"{name}/{frame.index:06d}.jpg", "width": r.image.width, "height": r.image.height,
                        "time": frame.time, "source_index": frame.source_index, "keyframe": frame.keyframe,
                        "tags": [tag_to_dict(t) for t in r.tags]}))
                    for ann, tid in zip(coco_annotations(r, n_img, cat_id, first_id=n_ann + 1), frame.track_ids):
                        ann.update(video_id=video_id, track_id=offset + int(tid))
                        anns.write(("\n" if n_ann == 0 else ",\n") + dumps(ann))
                        n_ann += 1
                for t in video.summary.get("tracks", []):
                    n_trk += 1
                    tracks.write(("\n" if n_trk == 1 else ",\n") + dumps(
                        {"id": offset + int(t["id"]), "video_id": video_id, "category_id": cat_id[t["label"]]}))
                offset += max([int(t["id"]) for t in video.summary.get("tracks", [])], default=0)
            for key, part in (("images", images), ("annotations", anns), ("tracks", tracks)):
                out.write(f'\n],\n"{key}": [')
                part.seek(0)
                shutil.copyfileobj(part, out)
            out.write("\n]}\n")
        super().finish_videos(videos, classes)
