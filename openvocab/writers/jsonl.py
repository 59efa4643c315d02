"""``labels.jsonl``: one JSON line per image (:mod:`openvocab.serialize` layout), streamed as images finish."""
from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

from ..registry import WRITERS
from ..serialize import result_to_dict
from ..structures import ImageResult
from .base import Writer, atomic_write_text


def _line(result: ImageResult) -> str:
    return json.dumps(result_to_dict(result), ensure_ascii=False) + "\n"


@WRITERS.register_module()
class JsonlWriter(Writer):
    """Appends one line per image to ``<out>/<filename>``, flushed and fsynced per image.

    :meth:`open` first rewrites the file atomically from ``previous`` (an earlier run's finished
    images), so a torn last line left by ``kill -9`` and lines of images not in ``previous``
    disappear; new images are then appended.

    Args:
        filename: output file name inside the output folder.
    """

    def __init__(self, *, filename: str = "labels.jsonl") -> None:
        super().__init__()
        if not filename or "/" in filename or "\\" in filename:
            raise ValueError(f"filename must be a plain file name, got {filename!r}")
        self.filename = filename
        self._f = None

    def _open(self, previous: list[ImageResult]) -> None:
        path = self.out_dir / self.filename
        atomic_write_text(path, "".join(_line(r) for r in previous))
        self._f = open(path, "a", encoding="utf-8")

    def write(self, result: ImageResult, image: Optional[np.ndarray] = None) -> None:
        self._check_open(result)
        self._f.write(_line(result))
        self._f.flush()
        os.fsync(self._f.fileno())

    def _close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
