"""The writer side of a job: per-image output files and the durable record, on their own thread.

Each finished image is serialised once; its per-image files (YOLO, LabelMe, overlays) are written
first, then its record row is committed (grouped: one fsync per burst of results), so an image is
either recorded with its files on disk or redone on resume. Failures go to the record and are
appended to ``failures.jsonl`` as they happen.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Optional, Sequence

import numpy as np

from ..inputs import InputItem
from ..jsonio import dumps, encode_line
from ..outdir import OutputError, describe_os_error
from ..serialize import result_to_dict
from ..structures import ImageResult
from ..writers.base import Writer
from .state import JobState

log = logging.getLogger("openvocab")

_STOP = object()


@dataclass
class SinkCounts:
    labeled: int = 0
    failed: list[dict] = field(default_factory=list)


class ResultSink:
    """Takes finished images and failures from the engine; writes and records them.

    Args:
        state: the job record.
        writers: per-image writers (:attr:`Writer.per_image`), opened.
        failures_file: ``failures.jsonl`` open for writing (binary), appended to as failures happen; the sink
            closes it.
        threaded: write on a background thread (``False``: in the caller's thread, no overlap).
        progress: a ``tqdm`` bar advanced once per recorded image.
        max_pending: images waiting for the writer thread before the engine blocks (memory bound).
        commit_every: results per record transaction at most.
        reload: reads an image again when a writer needs pixels the engine did not send (Ray).
    """

    def __init__(self, state: JobState, writers: Sequence[Writer], failures_file: BinaryIO, *, threaded: bool = True,
                 progress: Any = None, max_pending: int = 16, commit_every: int = 64,
                 reload: Optional[Callable[[str], Optional[np.ndarray]]] = None) -> None:
        self.state, self.writers = state, list(writers)
        self.reload = reload
        self.needs_image = any(w.needs_image for w in self.writers)
        self.progress, self.commit_every = progress, commit_every
        self.counts = SinkCounts()
        self._fail_file = failures_file
        self._rows: list[tuple[str, str, str]] = []
        self._fails: list[tuple[str, str, str]] = []
        self._error: Optional[BaseException] = None
        self._queue: Optional[queue.Queue] = queue.Queue(maxsize=max_pending) if threaded else None
        self._thread: Optional[threading.Thread] = None
        if threaded:
            self._thread = threading.Thread(target=self._loop, name="openvocab-writer", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ engine side
    def result(self, item: InputItem, result: ImageResult, image: Optional[np.ndarray]) -> None:
        self._put(("result", item, result, image if self.needs_image else None))

    def failure(self, item_or_file: InputItem | str, error: str) -> None:
        self._put(("failure", item_or_file, error, None))

    def record(self, item: InputItem, result_json: str) -> None:
        """A finished input that is not an image (a video: :mod:`openvocab.video.job`), already serialised: its
        record row, committed with the images' (its own files are written)."""
        self._put(("record", item, result_json, None))

    def close(self) -> None:
        """Drain, commit what is left, stop the thread; raises the writer side's error, if any."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        else:
            self._commit()
        self._fail_file.close()
        self._raise()

    # ------------------------------------------------------------------ writer side
    def _put(self, msg: tuple) -> None:
        self._raise()
        if self._queue is None:
            self._handle(msg)
            if len(self._rows) + len(self._fails) >= 1:
                self._commit()
        else:
            while True:
                try:
                    self._queue.put(msg, timeout=0.5)
                    return
                except queue.Full:
                    self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def _loop(self) -> None:
        q = self._queue
        try:
            while True:
                msg = q.get()
                if msg is _STOP:
                    break
                self._handle(msg)
                if q.empty() or len(self._rows) + len(self._fails) >= self.commit_every:
                    self._commit()
            self._commit()
        except BaseException as e:  # noqa: BLE001 - handed to the engine's thread
            self._error = e
            while True:  # unblock the engine; what is left is redone on resume
                try:
                    if q.get(timeout=0.1) is _STOP:
                        break
                except queue.Empty:
                    continue

    def _handle(self, msg: tuple) -> None:
        kind, item, payload, image = msg
        if kind == "failure":
            self._record_failure(item, payload)
            return
        if kind == "record":
            self._rows.append((item.key, item.file, payload))
            return
        if image is None and self.needs_image and self.reload is not None:
            image = self.reload(item.file)
        try:
            for w in self.writers:
                if image is not None or not w.needs_image:
                    w.write(payload, image)
        except OutputError:
            raise
        except OSError as e:
            raise OutputError(f"cannot write the outputs of {item.file}: {describe_os_error(e)}") from None
        except Exception as e:  # noqa: BLE001 - a result a writer cannot render: listed, redone on resume
            self._record_failure(item, f"cannot write its outputs: {type(e).__name__}: {e}")
            return
        self._rows.append((item.key, item.file, dumps(result_to_dict(payload))))

    def _record_failure(self, item: InputItem | str, error: str) -> None:
        file = item.file if isinstance(item, InputItem) else item
        key = item.key if isinstance(item, InputItem) else item
        rec = {"file": file, "error": error}
        self.counts.failed.append(rec)
        self._fails.append((key, file, error))
        log.warning("%s: %s", file, error)
        try:
            self._fail_file.write(encode_line(rec))
            self._fail_file.flush()
        except OSError as e:
            raise OutputError(f"cannot write failures.jsonl: {describe_os_error(e)}") from None

    def _commit(self) -> None:
        if not self._rows and not self._fails:
            return
        rows, fails = self._rows, self._fails
        self._rows, self._fails = [], []
        t0 = time.monotonic()
        self.state.add(results=rows, failures=fails)
        self.counts.labeled += len(rows)
        if self.progress is not None:
            self.progress.update(len(rows) + len(fails))
        log.debug("recorded %d images in %.3fs", len(rows), time.monotonic() - t0)
