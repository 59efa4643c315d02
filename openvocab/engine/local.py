"""The local engine: loader threads -> batched pipeline -> writer thread.

Decoding and per-stage preprocessing run ahead in loader workers. The models run in two steps: the calling
thread locates a batch (tagger, detector) while a mask thread finishes the batch before it (mask head, stuff
segmenter, mask encoding), so the GPU or the cores never wait for one image's post-processing. Outputs
are written and recorded on the sink's thread, in input order. With ``workers=0`` and an unthreaded sink it
is the one-image-at-a-time mode (read, run, write, then the next image).
"""
from __future__ import annotations

import collections
import concurrent.futures
from typing import Optional, Sequence, Union

from ..inputs import InputItem
from ..pipeline import LocatedBatch, Pipeline
from ..stages import overrides_prepare
from ..structures import ImageResult
from .loader import ImageLoader, LoadedImage, LoadFailure
from .sink import ResultSink

Outcome = Union[ImageResult, Exception]


def run_local(pipeline: Pipeline, items: Sequence[InputItem], sink: ResultSink, *, batch_size: int = 1,
              workers: int = 0, max_pixels: Optional[int] = None) -> None:
    """Label ``items`` into ``sink``. A batch the pipeline fails on is retried image by image, so one bad
    image fails alone. With ``workers > 0`` the mask stage of one batch overlaps the next batch's locating."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prepare = pipeline.prepare if workers > 0 and any(overrides_prepare(s) for s in pipeline.stages) else None
    steps = _Steps(pipeline, sink, overlap=workers > 0 and pipeline.has_mask_stage)
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


def run_batch(pipeline: Pipeline, batch: Sequence[LoadedImage], sink: ResultSink) -> None:
    """One batch through the pipeline; results and failures to ``sink``."""
    _deliver(sink, batch, label_batch(pipeline, batch))


def label_batch(pipeline: Pipeline, batch: Sequence[LoadedImage]) -> list[Outcome]:
    """The pipeline's results for ``batch``, or per image the exception it raised alone."""
    return [r for loaded, located in locate_batch(pipeline, batch)
            for r in (finish_batch(pipeline, located) if isinstance(located, LocatedBatch) else [located])]


def locate_batch(pipeline: Pipeline,
                 batch: Sequence[LoadedImage]) -> list[tuple[list[LoadedImage], LocatedBatch | Exception]]:
    """:meth:`Pipeline.locate` on ``batch``: ``[(batch, located)]``, or, when the batch fails, per image
    ``([image], located or the exception it raised alone)``."""
    prepared = [b.prepared for b in batch] if all(b.prepared is not None for b in batch) else None
    try:
        return [(list(batch), pipeline.locate([b.image for b in batch], [b.info for b in batch], prepared))]
    except Exception as e:  # noqa: BLE001 - a model error on a batch: retry one by one, keep going
        if len(batch) == 1:
            return [(list(batch), e)]
    out = []
    for b in batch:
        try:
            out.append(([b], pipeline.locate([b.image], [b.info], None if prepared is None else [b.prepared])))
        except Exception as e:  # noqa: BLE001
            out.append(([b], e))
    return out


def finish_batch(pipeline: Pipeline, located: LocatedBatch) -> list[Outcome]:
    """:meth:`Pipeline.finish` on ``located``, or per image the result or the exception it raised alone."""
    try:
        return pipeline.finish(located)
    except Exception as e:  # noqa: BLE001
        if len(located) == 1:
            return [e]
    out: list[Outcome] = []
    for one in located.split():
        try:
            out += pipeline.finish(one)
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


class _Steps:
    """Locates batches in the calling thread and finishes them on a mask thread (``overlap``) or inline,
    delivering outcomes and load failures to the sink in the order they came."""

    #: batches finished or being finished ahead of delivery (memory: a few batches of images)
    MAX_PENDING = 2

    def __init__(self, pipeline: Pipeline, sink: ResultSink, *, overlap: bool) -> None:
        self.pipeline, self.sink = pipeline, sink
        self._pool = (concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="openvocab-masks")
                      if overlap else None)
        self._pending: collections.deque = collections.deque()

    def failure(self, item: InputItem, error: str) -> None:
        if self._pending:
            self._pending.append(("failure", item, error))
        else:
            self.sink.failure(item, error)

    def run(self, batch: list[LoadedImage]) -> None:
        for loaded, located in locate_batch(self.pipeline, batch):
            if not isinstance(located, LocatedBatch):
                self._pending.append(("done", loaded, [located]))
            elif self._pool is None:
                self._pending.append(("done", loaded, finish_batch(self.pipeline, located)))
            else:
                self._pending.append(("future", loaded, self._pool.submit(finish_batch, self.pipeline, located)))
        self._deliver(keep=self.MAX_PENDING - 1 if self._pool is not None else 0)

    def drain(self) -> None:
        self._deliver(keep=0)

    def _deliver(self, *, keep: int) -> None:
        while self._pending and (len(self._pending) > keep or self._pending[0][0] == "failure"
                                 or (self._pending[0][0] == "future" and self._pending[0][2].done())):
            kind, what, payload = self._pending.popleft()
            if kind == "failure":
                self.sink.failure(what, payload)
            else:
                _deliver(self.sink, what, payload.result() if kind == "future" else payload)

    def close(self) -> None:
        """Stop the mask thread (after its current batch); undelivered results are simply not recorded."""
        if self._pool is not None:
            for kind, _, payload in self._pending:
                if kind == "future":
                    payload.cancel()
            self._pool.shutdown(wait=True)


def _deliver(sink: ResultSink, batch: Sequence[LoadedImage], outcomes: Sequence[Outcome]) -> None:
    for loaded, result in zip(batch, outcomes):
        if isinstance(result, Exception):
            sink.failure(loaded.item, f"pipeline error: {type(result).__name__}: {result}")
        else:
            sink.result(loaded.item, result, loaded.image)
