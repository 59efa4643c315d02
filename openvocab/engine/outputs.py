"""A job's outputs beside its per-image files: rendered from the job record at the end, in input order (every
writer's aggregate file, ``classes.txt``, ``failures.jsonl``), and the live ``failures.jsonl`` made as a new file
(never written through whatever was at its name)."""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from ..fileio import new_file_mode
from ..inputs import InputItem, InputProblem
from ..jsonio import encode_line
from ..outdir import TEMP_SUFFIX, OutputError, describe_os_error
from ..serialize import result_from_dict
from ..structures import ImageResult
from ..writers.base import Writer, atomic_open, atomic_write_text, class_list
from .state import JobState

#: the job's class list, one name per line: line ``i`` is YOLO class ``i`` and COCO category ``i + 1``
CLASSES_FILE = "classes.txt"
#: one ``{"file", "error"}`` line per input that gave no labels
FAILURES_FILE = "failures.jsonl"
#: the files every job writes beside its writers' outputs
JOB_FILES = (FAILURES_FILE, CLASSES_FILE)


def fresh_file(path: Path):
    """A new, empty ``path`` open for appending (binary): made as a temp file and renamed over ``path``, so a link
    or a file planted there is replaced, never written through."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    except OSError as e:
        raise OutputError(f"cannot write {describe_os_error(e, path)}") from None
    try:
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except OSError as e:
        os.close(fd)
        os.unlink(tmp)
        raise OutputError(f"cannot write {describe_os_error(e, path)}") from None
    return os.fdopen(fd, "ab")


def recorded_results(state: JobState, items: Sequence[InputItem]) -> Callable[[], Iterator[ImageResult]]:
    """The finished results of ``items`` in input order, read from the record (each time it is called)."""
    def results() -> Iterator[ImageResult]:
        for item in items:
            text = state.result_json(item.key)
            if text is None:
                continue
            r = result_from_dict(_loads(text))
            if r.image.file != item.file:  # recorded under another spelling of the same file
                r = dataclasses.replace(r, image=dataclasses.replace(r.image, file=item.file))
            yield r
    return results


def _loads(text: str) -> Any:
    return json.loads(text)


def render_outputs(writers: list[Writer], state: JobState, items: Sequence[InputItem], problems: Sequence[InputProblem],
            failures_path: Path, classes: Optional[Sequence[str]],
            all_items: Optional[Sequence[InputItem]] = None) -> None:
    """The image writers' aggregate files from the results of ``items``, ``classes.txt`` and ``failures.jsonl``
    (the failures of ``all_items``, default ``items``: a job's videos included)."""
    results = recorded_results(state, items)
    kept = f"(every finished image is kept in {state.path})"
    try:
        for w in writers:
            try:
                w.finish(results)
                w.close()
            except (OSError, OutputError):
                raise
            except Exception as e:  # noqa: BLE001 - a writer's library failing (Datumaro...): one line, resumable
                raise OutputError(f"{type(w).__name__} cannot write its output ({type(e).__name__}: {e}); rerun "
                                  f"with --resume {kept}") from None
        atomic_write_text(failures_path.parent / CLASSES_FILE,
                          "".join(n + "\n" for n in class_list(classes, results())))
        with atomic_open(failures_path, "wb") as f:
            for rec in job_failures(state, items if all_items is None else all_items, problems):
                f.write(encode_line(rec))
    except OSError as e:
        raise OutputError(f"cannot write the outputs: {describe_os_error(e)} {kept}") from None


def job_failures(state: JobState, items: Sequence[InputItem], problems: Sequence[InputProblem]) -> list[dict]:
    """This run's failures in input order: inputs that gave no image, then images not done with their error."""
    out = [{"file": str(p), "error": p.reason} for p in problems]
    for item in items:
        err = state.failure(item.key)
        if err is not None and state.result_json(item.key) is None:
            out.append({"file": item.file, "error": err})
    return out
