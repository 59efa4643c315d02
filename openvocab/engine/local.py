"""The local engine: loader threads -> the pipeline's steps, each on its own thread -> writer thread.

Decoding and per-stage preprocessing run ahead in loader workers. The pipeline's steps
(:attr:`~openvocab.pipeline.Pipeline.steps`: tag, caption, locate, finish) each run on their own thread, batch after
batch, so one batch is tagged while the one before is located and the one before that gets its masks: the
device, or the cores, never wait for one step's pre- or post-processing. Outcomes reach the sink in input
order; the sink writes and records them on its own thread. With ``workers=0`` and an unthreaded sink it is
the one-image-at-a-time mode (read, run, write, then the next image).
"""
from __future__ import annotations

import collections
import concurrent.futures
from typing import Any, Optional, Sequence, Union

from ..batch import BatchState
from ..inputs import InputItem
from ..pipeline import Pipeline
from ..stages import overrides_prepare
from ..structures import ImageResult
from .loader import ImageLoader, LoadedImage, LoadFailure
from .sink import ResultSink

Outcome = Union[ImageResult, Exception]
#: images with what a step made of them: a :class:`BatchState`, the results (after ``finish``) or the exception
#: they failed with
Unit = tuple[list[LoadedImage], Any]


def run_local(pipeline: Pipeline, items: Sequence[InputItem], sink: ResultSink, *, batch_size: int = 1,
              workers: int = 0, max_pixels: Optional[int] = None) -> None:
    """Label ``items`` into ``sink``. A batch a step fails on is retried image by image, so one bad image fails
    alone. With ``workers > 0`` the steps run on their own threads, each one batch behind the step before."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prepare = pipeline.prepare if workers > 0 and any(overrides_prepare(s) for s in pipeline.stages) else None
    steps = _Steps(pipeline, sink, threaded=workers > 0)
    try:
        batch: list[LoadedImage] = []
        for loaded in ImageLoader(items, workers=workers, max_pixels=max_pixels, prepare=prepare):
            if isinstance(loaded, LoadFailure):
                steps.failure(loaded.item, loaded.error)
                continue
            batch.append(loaded)
            if len(batch) >= batch_size:
                steps.run(batch)
                batch = []
        if batch:
            steps.run(batch)
        steps.drain()
    finally:
        steps.close()


def label_batch(pipeline: Pipeline, batch: Sequence[LoadedImage]) -> list[Outcome]:
    """The pipeline's results for ``batch``, or per image the exception it raised alone."""
    return [o for loaded, made in run_steps(pipeline, _start(pipeline, batch)) for o in _outcomes(loaded, made)]


def run_steps(pipeline: Pipeline, units: list[Unit]) -> list[Unit]:
    """Every step in turn, in this thread."""
    for step in pipeline.steps:
        units = run_step(pipeline, step, units)
    return units


def run_step(pipeline: Pipeline, step: str, units: list[Unit]) -> list[Unit]:
    """``pipeline.<step>`` on each unit still going; a unit the step fails on is retried image by image, so one
    bad image fails alone."""
    out: list[Unit] = []
    for loaded, state in units:
        if not isinstance(state, BatchState):  # failed before
            out.append((loaded, state))
            continue
        try:
            out.append((loaded, getattr(pipeline, step)(state)))
            continue
        except Exception as e:  # noqa: BLE001 - a model error on a batch: retry one by one, keep going
            if len(loaded) == 1:
                out.append((loaded, e))
                continue
        for one_loaded, one in zip(loaded, state.split()):
            try:
                out.append(([one_loaded], getattr(pipeline, step)(one)))
            except Exception as e:  # noqa: BLE001
                out.append(([one_loaded], e))
    return out


def _start(pipeline: Pipeline, batch: Sequence[LoadedImage]) -> list[Unit]:
    prepared = [b.prepared for b in batch] if all(b.prepared is not None for b in batch) else None
    return [(list(batch), pipeline.start([b.image for b in batch], [b.info for b in batch], prepared))]


class _Steps:
    """Runs batches through the pipeline's steps, each step on its own thread (``threaded``) or all inline,
    and delivers outcomes and load failures to the sink in the order they came."""

    def __init__(self, pipeline: Pipeline, sink: ResultSink, *, threaded: bool) -> None:
        self.pipeline, self.sink = pipeline, sink
        self._pools = None
        if threaded:
            self._pools = {step: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"openvocab-{step}")
                           for step in pipeline.steps}
        #: batches in flight: one per step being worked on, and one ready (memory: a few batches of images)
        self.max_pending = len(pipeline.steps) + 1 if threaded else 0
        self._pending: collections.deque = collections.deque()

    def failure(self, item: InputItem, error: str) -> None:
        if self._pending:
            self._pending.append(("failure", item, error))
        else:
            self.sink.failure(item, error)

    def run(self, batch: list[LoadedImage]) -> None:
        units = _start(self.pipeline, batch)
        if self._pools is None:
            self._pending.append(("done", run_steps(self.pipeline, units), None))
        else:
            made: Any = None
            for step in self.pipeline.steps:  # each step's thread takes the previous step's future, in batch order
                made = self._pools[step].submit(_after, self.pipeline, step, made, units)
            self._pending.append(("future", made, None))
        self._deliver(keep=self.max_pending - 1)

    def drain(self) -> None:
        self._deliver(keep=0)

    def _deliver(self, *, keep: int) -> None:
        while self._pending and (len(self._pending) > keep or self._pending[0][0] != "future"
                                 or self._pending[0][1].done()):
            kind, what, error = self._pending.popleft()
            if kind == "failure":
                self.sink.failure(what, error)
            else:
                _deliver(self.sink, what.result() if kind == "future" else what)

    def close(self) -> None:
        """Stop the step threads (after their current batch); undelivered results are simply not recorded."""
        if self._pools is not None:
            for kind, what, _ in self._pending:
                if kind == "future":
                    what.cancel()
            for pool in self._pools.values():
                pool.shutdown(wait=True, cancel_futures=True)


def _after(pipeline: Pipeline, step: str, before: Optional[concurrent.futures.Future],
           units: list[Unit]) -> list[Unit]:
    return run_step(pipeline, step, units if before is None else before.result())


def _deliver(sink: ResultSink, units: Sequence[Unit]) -> None:
    for loaded, made in units:
        for one, outcome in zip(loaded, _outcomes(loaded, made)):
            if isinstance(outcome, Exception):
                sink.failure(one.item, f"pipeline error: {type(outcome).__name__}: {outcome}")
            else:
                sink.result(one.item, outcome, one.image)


def _outcomes(loaded: list[LoadedImage], made: Any) -> list[Outcome]:
    """A finished unit's outcome per image: its results, or the exception it failed with for each image."""
    return made if isinstance(made, list) else [made] * len(loaded)
