"""Reading a job's record (``OUT/.openvocab/state.sqlite``) the way an outside tool would: plain sqlite3."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def _connect(out: Path):
    db = Path(out) / ".openvocab" / "state.sqlite"
    if not db.is_file():
        return None
    return sqlite3.connect(str(db), timeout=30)


def recorded_count(out: Path) -> int:
    """Finished images in the record (0 before the job created it)."""
    con = _connect(out)
    if con is None:
        return 0
    try:
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # the job is creating its tables right now
        return 0
    finally:
        con.close()


def recorded_results(out: Path) -> dict[str, dict]:
    """Resolved absolute path -> recorded result dict."""
    con = _connect(out)
    try:
        return {json.loads(k): json.loads(r) for k, r in con.execute("SELECT key, result FROM results")}
    finally:
        con.close()
