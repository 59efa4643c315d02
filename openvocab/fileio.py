"""Crash-safe file writing and content hashing.

* :func:`atomic_open`: write a file of any size through a temp file in the same folder, ``fsync``
  it, ``os.replace`` it onto the final name and ``fsync`` the folder, so a reader (or a run after
  ``kill -9`` / a power cut) sees either the old file or the complete new one, never a part.
* :func:`sha256sum` hashes what is on disk; :class:`HashMemo` remembers digests already computed
  (keyed by the file's real path and checked against its size, ``mtime_ns`` and inode), so a
  multi-GB checkpoint is hashed once, not on every run.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator, Optional

logger = logging.getLogger(__name__)


def _new_file_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_NEW_FILE_MODE = _new_file_mode()


def new_file_mode() -> int:
    """The permission bits a new file gets under this process's umask (``0o666 & ~umask``)."""
    return _NEW_FILE_MODE


def fsync_dir(path: os.PathLike | str) -> None:
    """``fsync`` a folder, making a rename inside it durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: os.PathLike | str, mode: str = "wb", *, encoding: str = "utf-8") -> Iterator[IO]:
    """``with atomic_open(dest) as f: f.write(...)``: ``dest`` appears, complete, only when the block
    ends without an exception; on an exception the temp file is removed and ``dest`` is untouched.

    ``mode``: ``"wb"`` (bytes) or ``"w"`` (text in ``encoding``). The file gets the permissions of the
    file it replaces, or those of a new file under the umask.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = os.lstat(path)  # a link's target is never looked at, nor written
        perm = st.st_mode & 0o777 if stat.S_ISREG(st.st_mode) else _NEW_FILE_MODE
    except OSError:
        perm = _NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=".part")
    try:
        with os.fdopen(fd, mode, encoding=None if mode == "wb" else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, perm)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def sha256sum(path: os.PathLike | str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class HashMemo:
    """Digests of files hashed before, in one small JSON file ``{real path: {stat, sha256}}``.

    A remembered digest is used only while the file's size, ``mtime_ns`` and inode are unchanged; any
    change (rewritten, replaced, truncated) means hashing again. Failing to read or write the memo
    is never an error: the file is then simply hashed again next time.
    """

    def __init__(self, *, path: os.PathLike | str) -> None:
        self.path = Path(path)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def sha256(self, file: os.PathLike | str) -> str:
        """The sha256 of ``file``'s content: remembered if unchanged since last hashed, else computed now."""
        real = os.path.realpath(file)
        st = os.stat(real)
        entry = self._read().get(real)
        if isinstance(entry, dict) and entry.get("stat") == _identity(st) and isinstance(entry.get("sha256"), str):
            return entry["sha256"]
        logger.info("hashing %s (sha256, once)", real)
        digest = sha256sum(real)
        if _identity(os.stat(real)) == _identity(st):  # not changed while being hashed
            self.remember(real, digest, st)
        return digest

    def remember(self, file: os.PathLike | str, digest: str, st: Optional[os.stat_result] = None) -> None:
        """Record ``digest`` as the content hash of ``file`` as it is now (``st``: its stat when hashed)."""
        real = os.path.realpath(file)
        data = {k: v for k, v in self._read().items() if k != real and os.path.exists(k)}
        data[real] = {"stat": _identity(st or os.stat(real)), "sha256": digest}
        try:
            with atomic_open(self.path) as f:
                f.write(json.dumps(data, indent=0).encode("utf-8"))
        except OSError as e:
            logger.debug("cannot write %s (%s); files will be hashed again", self.path, e)

    def forget(self, file: os.PathLike | str) -> None:
        real = os.path.realpath(file)
        data = self._read()
        if real in data:
            del data[real]
            with contextlib.suppress(OSError), atomic_open(self.path) as f:
                f.write(json.dumps(data, indent=0).encode("utf-8"))
