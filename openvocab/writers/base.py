"""The writer interface, atomic file writes and unique per-image output names.

A job drives every writer the same way::

    w.open(out_dir, previous=[...])   # results already done by an earlier run of a resumed job
    w.write(result, image)            # once per newly labeled image, in input order
    w.close()                         # final files (e.g. coco.json) are written here

Every file a writer produces is written atomically (temp file in the same folder, then
``os.replace``), so a killed job never leaves a half-written output file behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..structures import ImageResult


def _file_mode() -> int:
    """Permissions of a newly created file under the process umask (read once, at import)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_NEW_FILE_MODE = _file_mode()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then ``os.replace``.

    The file gets the permissions of the file it replaces, or those of a new file (umask), not
    the private ``0600`` of a temp file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = _NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded with ``encoding``."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: Optional[int] = None) -> None:
    """:func:`atomic_write_text` of ``json.dumps(obj)`` (UTF-8, non-ASCII kept as is)."""
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


class OutputNamer:
    """Unique, stable output stems for input files.

    The first file with a given stem (compared case-insensitively) keeps it (``x.jpg -> x``); a
    later, different file with the same stem gets ``<stem>-<8 hex digits of sha1(path)>``, which
    depends only on its path. A resumed job replays ``previous`` first, so names given by the
    earlier run are given again.
    """

    def __init__(self) -> None:
        self._by_file: dict[str, str] = {}
        self._taken: set[str] = set()

    def __call__(self, file: str) -> str:
        if file in self._by_file:
            return self._by_file[file]
        stem = Path(file).stem or "image"
        name = stem
        if name.lower() in self._taken:
            name = f"{stem}-{hashlib.sha1(file.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
            k = 1
            while name.lower() in self._taken:  # practically never: a stem ending in such a hash
                name = f"{stem}-{hashlib.sha1(f'{file}#{k}'.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
                k += 1
        self._taken.add(name.lower())
        self._by_file[file] = name
        return name


class Writer:
    """Base class of the output writers (registered in :data:`openvocab.registry.WRITERS`).

    Subclasses override :meth:`_open`, :meth:`write` and :meth:`_close`; :meth:`open` records
    ``out_dir`` and :meth:`close` is safe to call twice.
    """

    def __init__(self) -> None:
        self.out_dir: Optional[Path] = None
        self.namer = OutputNamer()
        self._closed = False

    def open(self, out_dir: str | os.PathLike, *, previous: Sequence[ImageResult] = ()) -> None:
        """Start writing into ``out_dir``; ``previous`` are the results of an earlier run (in order)."""
        for r in previous:
            if not isinstance(r, ImageResult):
                raise ValueError(f"previous results must be ImageResult, got {type(r).__name__}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._closed = False
        self._open(list(previous))

    def write(self, result: ImageResult, image: Optional[np.ndarray]) -> None:
        """Write one finished image (``image``: its RGB ``uint8 [H, W, 3]`` pixels)."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish the outputs (idempotent)."""
        if self.out_dir is None or self._closed:
            return
        self._closed = True
        self._close()

    def _open(self, previous: list[ImageResult]) -> None:
        pass

    def _close(self) -> None:
        pass

    def _check_open(self, result: ImageResult) -> None:
        if self.out_dir is None or self._closed:
            raise ValueError(f"{type(self).__name__}.write() called before open() or after close()")
        if not isinstance(result, ImageResult):
            raise ValueError(f"expected an ImageResult, got {type(result).__name__}")

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
