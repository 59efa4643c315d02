"""The frames of a job's videos, in its record (``OUT/.openvocab/state.sqlite``, table ``video_frames``).

Each labeled frame is appended as it finishes (one JSON row per frame: :meth:`TrackedFrame.to_dict`), in
transactions of ``commit_every`` frames, so a video of any length is spooled to disk instead of held in memory, and
the video's outputs (MOT, COCO video, CVAT tracks, YOLO labels) are rendered from these rows at the end of the job,
streamed in frame order. A video counts as finished only when its row in the job's ``results`` table is committed
(after its last frame here); a video without one is redone from its first frame on ``--resume`` (:meth:`clear`
drops its rows first), so a frame is never recorded twice.

This module has its own connection to the job's database (WAL, ``synchronous=FULL``), used by the video thread;
the job's :class:`~openvocab.engine.state.JobState` keeps its own.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterator

from ..jsonio import dumps
from ..outdir import STATE_DIR
from .structures import TrackedFrame

_SCHEMA = """
CREATE TABLE IF NOT EXISTS video_frames (key TEXT NOT NULL, frame INTEGER NOT NULL, data TEXT NOT NULL,
                                         PRIMARY KEY (key, frame));
"""


class VideoRecord:
    """The ``video_frames`` table of the job record in ``out_dir`` (see the module docstring). One thread at a time."""

    def __init__(self, out_dir: str | Path, *, commit_every: int = 128) -> None:
        from ..engine.state import STATE_FILE, StateError  # here: openvocab.engine imports the video job

        self.path = Path(out_dir) / STATE_DIR / STATE_FILE
        self.commit_every = commit_every
        try:
            self._db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StateError(f"{self.path}: cannot open the job record's video frames: {e}") from None
        self._rows: list[tuple[str, int, str]] = []

    def clear(self, key: str) -> None:
        """Forget every frame of ``key`` (a video redone from its start)."""
        self._rows = [r for r in self._rows if r[0] != dumps(key)]
        self._execute("DELETE FROM video_frames WHERE key = ?", (dumps(key),))

    def add(self, key: str, frame: TrackedFrame) -> None:
        self._rows.append((dumps(key), int(frame.index), dumps(frame.to_dict())))
        if len(self._rows) >= self.commit_every:
            self.commit()

    def commit(self) -> None:
        rows, self._rows = self._rows, []
        if rows:
            self._execute_many("INSERT OR REPLACE INTO video_frames (key, frame, data) VALUES (?, ?, ?)", rows)

    def count(self, key: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM video_frames WHERE key = ?", (dumps(key),)).fetchone()[0])

    def frames(self, key: str) -> Iterator[TrackedFrame]:
        """``key``'s frames in order, read lazily."""
        cursor = self._db.execute("SELECT data FROM video_frames WHERE key = ? ORDER BY frame", (dumps(key),))
        for (data,) in cursor:
            yield TrackedFrame.from_dict(json.loads(data))

    def close(self) -> None:
        self._db.close()

    def _execute(self, sql: str, args: tuple) -> None:
        self._execute_many(sql, [args])

    def _execute_many(self, sql: str, rows: list) -> None:
        from ..engine.state import StateError

        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            text = str(e)
            hint = "the disk is full: free space, then rerun with --resume" if "full" in text else text
            raise StateError(f"{self.path}: cannot record video frames: {hint}") from None
