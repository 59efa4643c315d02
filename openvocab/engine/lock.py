"""One job per output folder: an exclusive ``flock`` on ``OUT/.openvocab/lock``.

The lock file names its holder (pid, host, start time, command line). The kernel releases the lock
when the holder exits, however it exits (``kill -9`` included), so a stale lock never blocks a
resume. The output folder should be on a file system with working POSIX locks (a local disk; NFS
only with lock support).
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import socket
import stat
import sys
from pathlib import Path
from typing import Optional

from ..errors import RunError
from ..outdir import STATE_DIR, OutputError, describe_os_error, make_dirs


class OutputLockedError(RunError):
    """Another job holds the output folder."""


class OutputLock:
    """``with OutputLock(out): ...`` holds ``out`` for this process (raises :class:`OutputLockedError`)."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / STATE_DIR / "lock"
        self._fd: Optional[int] = None

    def acquire(self) -> "OutputLock":
        make_dirs(self.out_dir, STATE_DIR)
        try:  # never through a link planted there, never a file that has other names (a hard link)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as e:
            raise OutputError(f"cannot open the job's lock: {describe_os_error(e, self.path)}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)
            raise OutputError(f"{self.path}: not a plain file of its own (a hard link or a special file); the job "
                              "never writes into it: remove it, then rerun")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputLockedError(f"{self.out_dir} is in use by another openvocab job ({holder}); wait for it "
                                    "to finish or stop it, or choose another --out") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": _dt.datetime.now().isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8", "surrogateescape"), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 65536, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        info = {}
    if not info:
        return "holder unknown"
    return (f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}, "
            f"command: {info.get('command')}")
