"""A job's durable record in its output folder: ``OUT/.openvocab/state.sqlite``.

One SQLite database (WAL journal, ``synchronous=FULL``: a committed batch survives ``kill -9`` and
power loss) holds

* ``results``: one row per finished image, keyed by the image's resolved absolute path, with its
  result serialised once (:mod:`openvocab.serialize` JSON). Rows are only ever added or replaced
  by a newer result for the same key, never deleted by a run over fewer inputs;
* ``failures``: the latest error of each input that failed (cleared when it later succeeds);
* ``meta``: the job's fingerprint (config, vocabulary, model files), class numbering and layout.

Outputs (``coco.json``, ``labels.jsonl``...) are rendered from this record in input order, so a job
that was interrupted, resumed, or run by several workers writes the same files as one uninterrupted
run over the same inputs.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from ..errors import RunError
from ..jsonio import dumps
from ..outdir import STATE_DIR

STATE_FILE = "state.sqlite"
#: the files SQLite keeps beside the database
_SIDE_FILES = ("-wal", "-shm", "-journal")
_LEGACY_JOURNAL = "journal.jsonl"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, file TEXT NOT NULL, result TEXT NOT NULL,
                                    finished REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failures (key TEXT PRIMARY KEY, file TEXT NOT NULL, error TEXT NOT NULL,
                                     failed REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StateError(RunError):
    """The job record cannot be read or written (corrupt database, disk full...)."""


def _problem(e: sqlite3.Error) -> str:
    """What a SQLite error means for the user, and what to do."""
    text = str(e)
    if "full" in text:
        return "the disk is full: free space, then rerun with --resume"
    if "readonly" in text or "read-only" in text:
        return "the folder is read-only: make it writable (or choose another --out), then rerun with --resume"
    return f"{text}; move the record away to start over"


def _text(s: str) -> str:
    """Paths may hold lone surrogates (file names that are not UTF-8); SQLite stores UTF-8 text, so
    those are kept as their JSON escapes (:func:`openvocab.jsonio.dumps` of the string)."""
    return dumps(s)


def _untext(s: str) -> str:
    return json.loads(s)


class JobState:
    """The durable record of one output folder (see the module docstring). Not thread-safe: one
    thread at a time (the job's writer thread while images run, the main thread before and after)."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.dir = Path(out_dir) / STATE_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / STATE_FILE
        for p in (self.path, *(self.path.with_name(STATE_FILE + s) for s in _SIDE_FILES)):
            if p.is_symlink() or (os.path.lexists(p) and not p.is_file()):
                raise StateError(f"{p}: a symbolic link or not a file; the job record is never written through one: "
                                 "remove it, then rerun")
        fresh = not self.path.exists()
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StateError(f"{self.path}: cannot open the job record: {_problem(e)}") from None
        if fresh:
            self._import_legacy_journal()

    # ------------------------------------------------------------------ meta
    def meta(self) -> dict:
        rows = self._db.execute("SELECT name, value FROM meta").fetchall()
        return {name: json.loads(value) for name, value in rows}

    def set_meta(self, values: dict) -> None:
        try:
            with self._transaction():
                self._db.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                                     [(k, dumps(v)) for k, v in values.items()])
        except sqlite3.Error as e:
            raise StateError(f"{self.path}: cannot save the job's settings: {_problem(e)}") from None

    # ------------------------------------------------------------------ results
    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def done_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` have a finished result."""
        out: set[str] = set()
        for chunk in _chunks(list(keys), 500):
            q = f"SELECT key FROM results WHERE key IN ({','.join('?' * len(chunk))})"
            out.update(_untext(k) for (k,) in self._db.execute(q, [_text(k) for k in chunk]))
        return out

    def add(self, results: Sequence[tuple[str, str, str]] = (), failures: Sequence[tuple[str, str, str]] = ()
            ) -> None:
        """One durable transaction: ``results`` ``(key, file, result JSON)`` are stored (and their failures
        cleared), ``failures`` ``(key, file, error)`` recorded."""
        now = time.time()
        try:
            with self._transaction():
                if results:
                    self._db.executemany("INSERT OR REPLACE INTO results (key, file, result, finished) "
                                         "VALUES (?, ?, ?, ?)",
                                         [(_text(k), _text(f), r, now) for k, f, r in results])
                    self._db.executemany("DELETE FROM failures WHERE key = ?", [(_text(k),) for k, _, _ in results])
                if failures:
                    self._db.executemany("INSERT OR REPLACE INTO failures (key, file, error, failed) "
                                         "VALUES (?, ?, ?, ?)",
                                         [(_text(k), _text(f), e, now) for k, f, e in failures])
        except sqlite3.Error as e:  # disk full, read-only folder...
            raise StateError(f"{self.path}: cannot record finished images: {_problem(e)}") from None

    def result_json(self, key: str) -> Optional[str]:
        row = self._db.execute("SELECT result FROM results WHERE key = ?", (_text(key),)).fetchone()
        return None if row is None else row[0]

    def failure(self, key: str) -> Optional[str]:
        row = self._db.execute("SELECT error FROM failures WHERE key = ?", (_text(key),)).fetchone()
        return None if row is None else row[0]

    def keys(self) -> Iterator[str]:
        for (k,) in self._db.execute("SELECT key FROM results ORDER BY key"):
            yield _untext(k)

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> Path:
        """Start over (``--overwrite``): the old record is kept beside, renamed with a time stamp."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = self.dir / f"state.{stamp}.sqlite"
        try:
            self._db.execute("VACUUM INTO ?", (str(backup),))
            with self._transaction():
                for table in ("results", "failures", "meta"):
                    self._db.execute(f"DELETE FROM {table}")
        except sqlite3.Error as e:
            raise StateError(f"{self.path}: cannot start over: {_problem(e)}") from None
        return backup

    def close(self) -> None:
        self._db.close()

    def _transaction(self):
        return _Transaction(self._db)

    def _import_legacy_journal(self) -> None:
        """Results of an ``.openvocab/journal.jsonl`` written by openvocab <= 0.1 (keyed by the path as typed,
        resolved here against the current folder); the journal is then renamed ``journal.jsonl.imported``."""
        legacy = self.dir / _LEGACY_JOURNAL
        if not legacy.is_file():
            return
        rows = []
        with open(legacy, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break
                try:
                    entry = json.loads(raw)
                    rows.append((os.path.realpath(entry["key"]), entry["key"], dumps(entry["result"])))
                except (ValueError, KeyError, TypeError):
                    break
        self.add(results=rows)
        os.replace(legacy, legacy.with_name(_LEGACY_JOURNAL + ".imported"))


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return False
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                raise
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("ROLLBACK")
        return False


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]
