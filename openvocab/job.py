"""A labeling job over many images: loading, batching, writers, failures, progress and resume.

Layout of ``OUT``: ``coco.json``, ``labels.jsonl``, ``failures.jsonl``, ``yolo/``, ``labelme/``,
``vis/`` and ``.openvocab/journal.jsonl``: one line per finished image (its full result), appended and
fsynced as images finish. ``--resume`` reads the journal (a torn last line from ``kill -9`` is
ignored), skips the images already done and hands their results to the writers, so the final COCO
JSON holds each image exactly once. Failed images are retried on resume.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

from .images import ImageLoadError, expand_inputs, load_image
from .pipeline import Pipeline
from .registry import WRITERS
from .serialize import result_from_dict, result_to_dict
from .structures import ImageResult

log = logging.getLogger("openvocab")

#: ``--formats`` name -> registered writer type.
FORMATS = {"coco": "CocoWriter", "jsonl": "JsonlWriter", "yolo": "YoloWriter",
           "labelme": "LabelMeWriter", "vis": "OverlayWriter"}
JOURNAL = Path(".openvocab") / "journal.jsonl"


@dataclass
class JobSummary:
    """What a job did. ``exit_code`` is 1 when some inputs failed, else 0."""

    total: int = 0
    labeled: int = 0
    skipped: int = 0
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def parse_formats(formats: str | Sequence[str]) -> list[str]:
    items = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    items = [f for f in items if f]
    bad = [f for f in items if f not in FORMATS]
    if bad:
        raise ValueError(f"Unknown output format(s) {bad}; choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(items))


def read_journal(path: Path) -> list[dict]:
    """Finished entries of a journal; a torn or corrupt line (from a kill) and what follows is dropped."""
    entries: list[dict] = []
    if not path.is_file():
        return entries
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                entries.append(json.loads(raw))
            except json.JSONDecodeError:
                break
    return entries


class Journal:
    """Append-only record of finished images (fsynced per image)."""

    def __init__(self, path: Path, entries: list[dict]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:  # rewrite without any torn tail, atomically
            for e in entries:
                f.write(json.dumps(e) + "\n")
        os.replace(tmp, path)
        self._f = open(path, "a", encoding="utf-8")

    def add(self, key: str, result: ImageResult) -> None:
        self._f.write(json.dumps({"key": key, "result": result_to_dict(result)}) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run_job(pipeline: Pipeline, inputs: Sequence[str], out_dir: str | Path, *,
            formats: Sequence[str] = ("coco", "jsonl"), vis: bool = False, batch_size: int = 1,
            resume: bool = False, max_pixels: Optional[int] = None, progress: bool = True) -> JobSummary:
    """Label every image of ``inputs`` (files, folders, globs, .txt lists) into ``out_dir``."""
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    summary = JobSummary()
    files, missing = expand_inputs(list(inputs))
    summary.total = len(files) + len(missing)
    failures = [{"file": m, "error": "no such file or directory, or no images in it"} for m in missing]

    entries = read_journal(out / JOURNAL) if resume else []
    wanted = set(files)
    entries = [e for e in entries if e.get("key") in wanted]
    done = {e["key"]: result_from_dict(e["result"]) for e in entries}
    previous = [done[f] for f in files if f in done]
    todo = [f for f in files if f not in done]
    summary.skipped = len(previous)

    names = parse_formats(list(formats) + (["vis"] if vis else []))
    pipeline.setup()  # a missing checkpoint stops the job here, before any output is touched
    writers = [WRITERS.build(dict(type=FORMATS[n])) for n in names]
    for w in writers:
        w.open(out, previous=previous)
    journal = Journal(out / JOURNAL, [e for e in entries])
    fail_path = out / "failures.jsonl"
    fail_file = open(fail_path, "w", encoding="utf-8")

    def fail(file: str, error: str) -> None:
        rec = {"file": file, "error": error}
        summary.failed.append(rec)
        fail_file.write(json.dumps(rec) + "\n")
        fail_file.flush()
        log.warning("%s: %s", file, error)

    for rec in failures:
        fail(rec["file"], rec["error"])
    bar = tqdm(total=len(todo), unit="img", desc="labeling", disable=not progress, dynamic_ncols=True)
    try:
        for chunk in _batches(todo, batch_size):
            loaded = []
            for f in chunk:
                try:
                    loaded.append((f, *load_image(f, max_pixels=max_pixels)))
                except ImageLoadError as e:
                    fail(f, str(e))
                    bar.update(1)
            if not loaded:
                continue
            try:
                results = pipeline([x[1] for x in loaded], [x[2] for x in loaded])
            except Exception as e:  # a model error on a batch: retry one by one, keep going
                if len(loaded) > 1:
                    results = []
                    for item in loaded:
                        try:
                            results += pipeline([item[1]], [item[2]])
                        except Exception as e1:
                            results.append(e1)
                else:
                    results = [e]
            for (f, img, _), res in zip(loaded, results):
                if isinstance(res, Exception):
                    fail(f, f"pipeline error: {type(res).__name__}: {res}")
                else:
                    for w in writers:
                        w.write(res, img)
                    journal.add(f, res)
                    summary.labeled += 1
                bar.update(1)
    finally:
        bar.close()
        journal.close()
        fail_file.close()
        for w in writers:
            w.close()
    summary.seconds = time.monotonic() - start
    return summary
