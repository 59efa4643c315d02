"""A job's output folder (``--out``): the names it owns, folders made without following links, one-line errors.

A job writes only inside its output folder and only entries it made itself:

* the top-level names its writers declare (:meth:`openvocab.writers.Writer.outputs`: ``coco.json``, ``yolo/``...)
  and the job's own files are recorded as the job's in its record before anything is written; a name that is
  already there and not recorded (a user's ``coco.json``) is refused before the job starts (:func:`foreign`);
* every folder below them is made by :func:`make_dirs`, which refuses a symbolic link or a file on the way;
* every file is written through a temp file ``.NAME.XXXX.part`` beside it and renamed over the final name
  (:func:`openvocab.fileio.atomic_open`), which replaces a link planted there instead of writing through it;
  a later run removes such temp files that a killed run left (:func:`remove_stale_temp`);
* ``--overwrite`` removes exactly the previous job's entries (:func:`remove_outputs`).
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Iterable, Optional

from .errors import RunError

#: suffix of every temp file or folder a job makes before renaming it into place
TEMP_SUFFIX = ".part"
#: the job's record folder inside ``--out``
STATE_DIR = ".openvocab"
_TEMP = re.compile(r"^\.(?P<name>.+)\.[^./]+\.part$")


class OutputError(RunError):
    """Outputs cannot be written (disk full, read-only folder, a link or a file in the way...): the job stops with
    one line; finished work is kept in the job record."""


def plain_name(value: object, what: str) -> str:
    """``value`` if it is a plain file or folder name (no path separator, not ``.``/``..``, not the job record's
    folder); ``ValueError`` naming ``what`` otherwise."""
    if (not isinstance(value, str) or value in ("", ".", "..") or "/" in value or "\\" in value or "\0" in value
            or value == STATE_DIR):
        raise ValueError(f"{what} must be a plain name inside the output folder (no '/', not '..'), got {value!r}")
    return value


def describe_os_error(e: OSError, path: Optional[os.PathLike | str] = None) -> str:
    """One line saying what went wrong with ``path`` (default: the error's own file; a temp file is named by the
    file it was to become) and what to do."""
    where = path if path is not None else e.filename
    if where is not None and str(where).endswith(TEMP_SUFFIX) and getattr(e, "filename2", None):
        where = e.filename2
    code = e.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = "the disk is full (or over quota): free space, then rerun with --resume"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = ("not allowed to write there (read-only or immutable folder, or no permission): fix the folder's "
                "permissions or choose another --out, then rerun with --resume")
    elif code == errno.EISDIR:
        what = "a folder stands where the job writes a file: move it away, then rerun with --resume"
    elif code == errno.ENOTDIR:
        what = "a file stands where the job needs a folder: move it away, then rerun with --resume"
    elif code == errno.ELOOP:
        what = "is a symbolic link, and the job never writes through one: remove the link, then rerun with --resume"
    else:
        what = f"{e.strerror or e}"
    return f"{where}: {what}" if where is not None else what


def make_dirs(root: os.PathLike | str, *parts: str) -> Path:
    """``root/parts[0]/parts[1]/...``, each folder made if missing; a symbolic link or a file on the way is an
    :class:`OutputError` (the job never writes into a folder it did not make through a link)."""
    path = Path(root)
    for part in parts:
        path = path / part
        try:
            os.mkdir(path)
            continue
        except FileExistsError:
            pass
        except OSError as e:
            raise OutputError(f"cannot make the folder {describe_os_error(e, path)}") from None
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise OutputError(f"{path}: is a symbolic link, and the job writes only into folders it made itself: "
                              "remove the link or choose another --out")
        if not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path}: a file stands where the job keeps a folder: move it away or choose another --out")
    return path


def foreign(root: os.PathLike | str, names: Iterable[str], owned: Iterable[str]) -> list[str]:
    """The entries of ``names`` that exist in ``root`` (as anything, links included) but are not ``owned``."""
    mine = set(owned)
    return sorted(n for n in set(names) if n not in mine and os.path.lexists(os.path.join(root, n)))


def refuse_foreign(root: os.PathLike | str, names: Iterable[str], owned: Iterable[str], *,
                   error: type[Exception] = OutputError) -> None:
    """``error`` naming the entries of ``names`` in ``root`` that the job did not write (if any)."""
    found = foreign(root, names, owned)
    if found:
        listed = ", ".join(os.path.join(str(root), n) for n in found)
        raise error(f"{listed}: already there and not written by this job; openvocab never overwrites what "
                          "it did not write: move it away or choose another --out")


def _remove(path: str) -> None:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # never follows links inside
    else:
        os.unlink(path)  # a file, or a link (never its target)


def remove_outputs(root: os.PathLike | str, owned: Iterable[str]) -> None:
    """Remove the entries ``owned`` by the previous job in ``root`` (``--overwrite``), and its temp files."""
    for name in sorted(set(owned)):
        path = os.path.join(root, plain_name(name, "a recorded output"))
        try:
            _remove(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise OutputError(f"--overwrite cannot remove the previous job's {describe_os_error(e, path)}") from None
    remove_stale_temp(root, owned)


def remove_stale_temp(root: os.PathLike | str, owned: Iterable[str]) -> list[str]:
    """Remove the temp entries (``.NAME.XXXX.part``) a killed run left: beside the job's own top-level entries,
    and anywhere inside its own folders (never following links). Returns the paths removed."""
    mine = set(owned)
    removed: list[str] = []

    def drop(path: str) -> None:
        try:
            _remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise OutputError(f"cannot remove a stale temp file {describe_os_error(e, path)}") from None

    try:
        top = list(os.scandir(root))
    except OSError as e:
        raise OutputError(f"cannot read the output folder {describe_os_error(e, root)}") from None
    for entry in top:
        m = _TEMP.match(entry.name)
        if m and m.group("name") in mine:
            drop(entry.path)
    for name in mine:
        path = os.path.join(root, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        for folder, dirs, files in os.walk(path):  # os.walk does not descend into links
            for n in list(dirs) + files:
                if n.startswith(".") and n.endswith(TEMP_SUFFIX):
                    drop(os.path.join(folder, n))
                    if n in dirs:
                        dirs.remove(n)
    return removed
