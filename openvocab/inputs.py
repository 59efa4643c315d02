"""A job's inputs: command-line files, folders, globs and list files -> image files, each with its key and name.

:func:`expand_inputs` turns inputs into files and says, for every input that gave none, why
(:class:`InputProblem`). :func:`collect_inputs` makes the job's :class:`InputItem` list from them.
"""
from __future__ import annotations

import errno
import glob
import os
from dataclasses import dataclass
from typing import Iterable, Sequence

#: File extensions (lower case) picked up when a folder or glob is expanded. Files named directly
#: on the command line are always tried, whatever their extension.
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm", ".tga",
})
#: Video file extensions (lower case) picked up from folders and globs when a job takes videos
#: (``expand_inputs(..., videos=True)``; :mod:`openvocab.video.source` also recognises videos by content).
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
_GLOB_CHARS = frozenset("*?[")


class InputProblem(str):
    """An input (or a folder inside one) that gave no image: the path (this string) and :attr:`reason`."""

    reason: str

    def __new__(cls, path: str, reason: str) -> "InputProblem":
        obj = super().__new__(cls, path)
        obj.reason = reason
        return obj


def is_image_file(path: str) -> bool:
    """Whether ``path``'s extension (any case) is one of :data:`IMAGE_EXTENSIONS`."""
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def is_video_name(path: str) -> bool:
    """Whether ``path``'s extension (any case) is one of :data:`VIDEO_EXTENSIONS`."""
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _reason(e: OSError, what: str) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"cannot read {what}: permission denied"
    if e.errno == errno.ELOOP:
        return f"cannot read {what}: too many levels of symbolic links"
    return f"cannot read {what}: {e.strerror or e}"


class _Walker:
    """Image files under a folder, recursively, sorted by path components; hidden entries skipped; symlinked
    folders followed once (a folder reached twice, e.g. a link loop, is walked only the first time)."""

    def __init__(self, exclude: Sequence[str], problems: list[InputProblem], videos: bool = False) -> None:
        self.exclude = [os.path.realpath(e) for e in exclude]
        self.wanted = (lambda n: is_image_file(n) or is_video_name(n)) if videos else is_image_file
        self.problems = problems
        self.visited: set[tuple[int, int]] = set()

    def excluded(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(real == e or real.startswith(e.rstrip(os.sep) + os.sep) for e in self.exclude)

    def walk(self, folder: str) -> list[str]:
        found: list[tuple[list[str], str]] = []
        self._walk(folder, [], found)
        return [p for _, p in sorted(found, key=lambda t: t[0])]

    def _walk(self, folder: str, rel: list[str], found: list) -> None:
        if self.excluded(folder):
            return
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in self.visited:
                return
            self.visited.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            self.problems.append(InputProblem(folder, _reason(e, "folder")))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = os.path.join(folder, entry.name)
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError as e:
                self.problems.append(InputProblem(path, _reason(e, "entry")))
                continue
            if is_dir:
                self._walk(path, rel + [entry.name], found)
            elif self.wanted(entry.name):
                if entry.is_symlink() and not os.path.exists(path):
                    self.problems.append(InputProblem(path, "broken symbolic link"))
                elif not self.excluded(path):
                    found.append((rel + [entry.name], path))


def expand_inputs(inputs: Iterable[str], *, exclude: Sequence[str] = (),
                  videos: bool = False) -> tuple[list[str], list[InputProblem]]:
    """Expand command-line inputs into image files.

    Each input may be:

    * a file: kept as is (even with an unusual extension: loading it decides);
    * a folder: its image files (by extension, any case), recursively, sorted; hidden files and
      folders (``.name``) are skipped; symlinked folders are followed (each folder once);
    * a ``.txt`` file: a list of paths, one per line (relative to the list's folder, or
      absolute); blank lines and ``#`` comments are skipped; each entry is expanded like an input;
    * a glob (``imgs/*.jpg``, ``data/**/*.png``): matching image files, sorted, and matching folders
      expanded.

    Anything under ``exclude`` (a job's output folder) is never an input. ``videos``: folders and globs also give
    video files (:data:`VIDEO_EXTENSIONS`).

    Returns:
        ``(files, problems)``: the files in input order, duplicates (same absolute path) dropped,
        first occurrence kept; and an :class:`InputProblem` (a ``str``: the path, with a ``reason``)
        for every input that gave no file (missing paths, empty folders, globs without matches,
        unreadable lists) and every unreadable folder met while walking, in input order.
    """
    if isinstance(inputs, (str, os.PathLike)):
        raise ValueError("expand_inputs takes a list of inputs, not a single string")
    files: list[str] = []
    problems: list[InputProblem] = []
    seen: set[str] = set()
    lists_open: set[str] = set()
    walker = _Walker(exclude, problems, videos)

    def add(path: str) -> None:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            files.append(path)

    def add_folder(folder: str) -> bool:
        before = len(problems)
        found = walker.walk(folder)
        for p in found:
            add(p)
        if not found and len(problems) == before and not walker.excluded(folder):
            problems.append(InputProblem(folder, "a folder with no image files in it" if not videos else
                                         "a folder with no image or video files in it"))
        return bool(found)

    def expand(item: str) -> None:
        item = os.fspath(item)
        if walker.excluded(item):
            problems.append(InputProblem(item, "inside the job's output folder (outputs are never inputs)"))
        elif os.path.isdir(item):
            add_folder(item)
        elif os.path.isfile(item) and item.lower().endswith(".txt"):
            key = os.path.abspath(item)
            if key in lists_open:  # a list that includes itself
                return
            lists_open.add(key)
            try:
                entries = _read_list(item)
            except ValueError as e:
                problems.append(InputProblem(item, str(e)))
                return
            for entry in entries:
                expand(entry)
            lists_open.discard(key)
        elif os.path.isfile(item):
            add(item)
        elif _GLOB_CHARS & set(item) and not os.path.lexists(item):
            hits = 0
            for m in sorted(glob.glob(item, recursive=True)):
                if os.path.isdir(m):
                    hits += add_folder(m)
                elif walker.wanted(m) and not walker.excluded(m):
                    hits += 1
                    add(m)
            if not hits:
                problems.append(InputProblem(item, "no image file matches this pattern"))
        else:
            problems.append(InputProblem(item, _missing_reason(item)))

    for item in inputs:
        expand(item)
    return files, problems


def _missing_reason(path: str) -> str:
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return "no such file or directory"
        return _reason(e, "path")
    return "not a regular file or folder"


def _read_list(txt: str) -> list[str]:
    """Entries of a ``.txt`` list: one path per line, ``#`` comments and blank lines skipped,
    relative entries resolved against the list's own folder."""
    try:
        with open(txt, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ValueError(_reason(e, "this list of paths")) from None
    except UnicodeDecodeError as e:
        raise ValueError(f"cannot read this list of paths: not UTF-8 text ({e.reason} at byte {e.start})") from None
    base = os.path.dirname(txt)
    out = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entry = os.path.expanduser(entry)
        out.append(entry if os.path.isabs(entry) else os.path.join(base, entry))
    return out


# --------------------------------------------------------------------------- job inputs


@dataclass(frozen=True)
class InputItem:
    """One input image of a job.

    Attributes:
        key: the resolved absolute path: how the job record knows the image, whichever way the path was
            typed (relative, absolute, through a symlink or a list file).
        file: the path as the user's inputs spelled it (``ImageInfo.file``).
        name: the unique stem of its per-image output files (``yolo/labels/<name>.txt``...).
    """

    key: str
    file: str
    name: str


def input_key(path: str) -> str:
    """The job record's key of an image path: resolved, absolute."""
    return os.path.realpath(os.path.abspath(path))


def collect_inputs(inputs: Sequence[str], *, exclude: Sequence[str | os.PathLike] = (), videos: bool = False
                   ) -> tuple[list[InputItem], list[InputProblem]]:
    """:func:`expand_inputs` -> the job's :class:`InputItem` s (two paths to one file are one input, the first
    spelling kept) and the problems."""
    from .writers.base import OutputNamer

    files, problems = expand_inputs(list(inputs), exclude=[os.fspath(e) for e in exclude], videos=videos)
    namer = OutputNamer()
    items: list[InputItem] = []
    seen: set[str] = set()
    for f in files:
        key = input_key(f)
        if key not in seen:
            seen.add(key)
            items.append(InputItem(key=key, file=f, name=namer(key)))
    return items, problems
