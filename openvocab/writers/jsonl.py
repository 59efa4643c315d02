"""``labels.jsonl``: one JSON line per image (:mod:`openvocab.serialize` layout), in input order.

``file`` is the input path as given; with an image root (``--image-root``), ``file_name`` follows it: the
image's path relative to the root, as COCO's ``file_name``. The job's class list is ``classes.txt`` beside.
"""
from __future__ import annotations

from typing import Callable, Iterable

from ..jsonio import dumps
from ..registry import WRITERS
from ..serialize import result_to_dict
from ..structures import ImageResult
from .base import Writer, atomic_open, plain_name


def _line(result: ImageResult, file_name: str) -> str:
    d = result_to_dict(result)
    if file_name != d["file"]:
        d = {"file": d["file"], "file_name": file_name, **{k: v for k, v in d.items() if k != "file"}}
    return dumps(d) + "\n"


@WRITERS.register_module()
class JsonlWriter(Writer):
    """Writes ``<out>/<filename>``: one line per image, in input order, atomically (streamed from the
    results; the job's record ``.openvocab/state.sqlite`` holds finished images while a job runs).

    Args:
        filename: output file name inside the output folder.
    """

    def __init__(self, *, filename: str = "labels.jsonl") -> None:
        super().__init__()
        self.filename = plain_name(filename, "filename")

    def finish(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        with atomic_open(self.out_dir / self.filename, "w") as f:
            for r in results():
                f.write(_line(r, self.file_name(r)))
        super().finish(results)
