"""The writer interface, atomic file writes and unique per-image output names.

A job drives every writer the same way::

    w.open(out_dir, context=WriterContext(classes=..., names=...))
    w.write(result, image)            # per-image writers: once per newly labeled image, as it finishes
    w.finish(results)                 # every result of the job's inputs, in input order (from the job record)
    w.close()

Every file a writer produces is written atomically (temp file in the same folder, then
``os.replace``), so a killed job never leaves a half-written output file behind.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np

from ..fileio import atomic_open  # noqa: F401  (re-exported: writers use it)
from ..image_root import relative_name
from ..outdir import make_dirs, plain_name  # noqa: F401  (writers use them)
from ..jsonio import dumps
from ..structures import ImageResult


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_open`)."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded with ``encoding``."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: Optional[int] = None) -> None:
    """:func:`atomic_write_text` of ``obj`` as JSON (UTF-8, non-ASCII kept as is; :func:`openvocab.jsonio.dumps`)."""
    atomic_write_text(path, dumps(obj, indent=indent) + "\n")


#: how a writer puts the input images beside its labels (YOLO, CVAT, VOC): a symbolic link to the input, a hard
#: link (a copy where the output folder is on another file system), or a copy
IMAGE_MODES = ("symlink", "hardlink", "copy")


def place_image(src: str, dest: Path, mode: str) -> None:
    """Put image ``src`` at ``dest`` (:data:`IMAGE_MODES`: a symbolic link to its absolute path, a hard link, or a
    copy), atomically, replacing what is there (never writing through it)."""
    target = os.path.abspath(src)
    if mode == "symlink" and os.path.islink(dest) and os.readlink(dest) == target:
        return
    if mode == "hardlink" and not os.path.islink(dest) and os.path.exists(dest) and os.path.samefile(dest, target):
        return
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name[:100]}.", suffix=".part")
    os.close(fd)
    try:
        os.unlink(tmp)
        if mode == "symlink":
            os.symlink(target, tmp)
        elif mode == "hardlink":
            try:
                os.link(target, tmp)
            except OSError:  # another file system, or links not allowed there
                shutil.copyfile(target, tmp)
        else:
            shutil.copyfile(target, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


class OutputNamer:
    """Unique, stable output stems for input files.

    The first file with a given stem (compared case-insensitively) keeps it (``x.jpg -> x``); a
    later, different file with the same stem gets ``<stem>-<8 hex digits of sha1(path)>``, which
    depends only on its path. A job names all its inputs up front, in input order. A stem longer
    than :attr:`MAX_STEM_BYTES` (file names are at most 255 bytes) is cut and given the hash.
    """

    MAX_STEM_BYTES = 160

    def __init__(self) -> None:
        self._by_file: dict[str, str] = {}
        self._taken: set[str] = set()

    def __call__(self, file: str) -> str:
        if file in self._by_file:
            return self._by_file[file]
        stem = Path(file).stem or "image"
        raw = os.fsencode(stem)
        if len(raw) > self.MAX_STEM_BYTES:
            short = os.fsdecode(raw[:self.MAX_STEM_BYTES])
            stem = f"{short}-{hashlib.sha1(file.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
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


@dataclass(frozen=True)
class WriterContext:
    """What a job tells its writers beyond the results.

    Attributes:
        classes: the job's class numbering, shared by every writer (COCO ids ``1..K`` and YOLO ids ``0..K-1``
            in this order); ``None``: the labels found, sorted by name.
        names: input file -> the unique stem of its per-image output files (``None``: each writer's own
            :class:`OutputNamer`).
        load_image: reads an input's pixels again, for a per-image writer that needs them for an image
            finished by an earlier run (``None``: such files are not drawn).
        image_root: the folder image names are relative to (:mod:`openvocab.image_root`; COCO ``file_name``...);
            ``None``: images are named by their paths as given.
        replay: :meth:`Writer.finish` will be given every result (a job, from its record), so a writer never
            needs to keep results in memory.
    """

    classes: Optional[tuple[str, ...]] = None
    names: Optional[Mapping[str, str]] = None
    load_image: Optional[Callable[[str], Optional[np.ndarray]]] = None
    image_root: Optional[str] = None
    replay: bool = False


def class_list(known: Optional[Iterable[str]], results: Iterable[ImageResult]) -> list[str]:
    """The class list of a job: ``known`` (its class numbering), then any label outside it, sorted by
    name; without ``known``, every label in ``results`` sorted by name. Line ``i`` is YOLO id ``i`` and COCO
    id ``i + 1`` in every format."""
    known = list(known or ())
    have = set(known)
    return known + sorted({label for r in results for label in r.detections.labels} - have)


class Writer:
    """Base class of the output writers (registered in :data:`openvocab.registry.WRITERS`).

    Two kinds: per-image writers (:attr:`per_image`: a file per image, written by :meth:`write` as
    images finish) and aggregate writers (one file for the whole job, written by :meth:`finish` from
    every result in input order). A job calls :meth:`write` on per-image writers only and
    :meth:`finish` on all; used stand-alone (``open``, ``write``..., ``close``), an aggregate writer
    keeps what it was given and writes it at :meth:`close`.
    """

    #: writes one file per image in :meth:`write`
    per_image: bool = False
    #: :meth:`write` needs the image's pixels
    needs_image: bool = False

    def __init__(self) -> None:
        self.out_dir: Optional[Path] = None
        self.namer = OutputNamer()
        self.context = WriterContext()
        self._closed = False
        self._finished = False
        self._kept: list[ImageResult] = []

    def open(self, out_dir: str | os.PathLike, *, context: Optional[WriterContext] = None) -> None:
        """Start writing into ``out_dir``."""
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.context = context or WriterContext()
        self._closed = self._finished = False
        self._kept = []
        self._open()

    def write(self, result: ImageResult, image: Optional[np.ndarray] = None) -> None:
        """One finished image (``image``: its RGB ``uint8 [H, W, 3]`` pixels, if :attr:`needs_image`)."""
        self._check_open(result)
        self._kept.append(result)

    def finish(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        """Write the job's outputs: ``results()`` iterates every result of the job, in input order (it may
        be called more than once)."""
        self._finished = True

    def close(self) -> None:
        """Finish the outputs (idempotent)."""
        if self.out_dir is None or self._closed:
            return
        if not self._finished and not self.per_image:
            kept = self._kept
            self.finish(lambda: iter(kept))
        self._closed = True
        self._kept = []
        self._close()

    def outputs(self) -> list[str]:
        """The entries this writer makes directly in the output folder (its ``subdir``, else its ``filename``): a
        job claims them as its own before it starts, and refuses to start where one is there and not its own."""
        name = getattr(self, "subdir", None) or getattr(self, "filename", None)
        return [name] if name else []

    def name_of(self, result: ImageResult) -> str:
        """The stem of ``result``'s per-image output files."""
        names = self.context.names
        if names is not None and result.image.file in names:
            return names[result.image.file]
        return self.namer(result.image.file)

    def classes_of(self, results: Callable[[], Iterable[ImageResult]]) -> list[str]:
        """The class list (:func:`class_list` of the job's numbering and ``results()``)."""
        return class_list(self.context.classes, results())

    def file_name(self, result: ImageResult) -> str:
        """The image's name in the outputs: its path relative to the image root (``/`` separators), else the
        path as given."""
        root = self.context.image_root
        if root is None:
            return result.image.file
        rel = relative_name(result.image.file, root)
        return result.image.file if rel is None else rel

    def _open(self) -> None:
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
