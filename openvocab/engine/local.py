"""The local engine: loader threads -> batched pipeline (this thread) -> writer thread.

Decoding and per-stage preprocessing run ahead in loader workers; the models run batch after batch
in the calling thread; outputs are written and recorded on the sink's thread. With ``workers=0``
and an unthreaded sink it is the one-image-at-a-time mode (read, run, write, then the next image).
"""
from __future__ import annotations

from typing import Optional, Sequence

from ..inputs import InputItem
from ..pipeline import Pipeline
from ..stages import overrides_prepare
from .loader import ImageLoader, LoadedImage, LoadFailure
from .sink import ResultSink


def run_local(pipeline: Pipeline, items: Sequence[InputItem], sink: ResultSink, *, batch_size: int = 1,
              workers: int = 0, max_pixels: Optional[int] = None) -> None:
    """Label ``items`` into ``sink``. A batch the pipeline fails on is retried image by image, so one bad
    image fails alone."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prepare = pipeline.prepare if workers > 0 and any(overrides_prepare(s) for s in pipeline.stages) else None
    batch: list[LoadedImage] = []
    for loaded in ImageLoader(items, workers=workers, max_pixels=max_pixels, prepare=prepare):
        if isinstance(loaded, LoadFailure):
            sink.failure(loaded.item, loaded.error)
            continue
        batch.append(loaded)
        if len(batch) >= batch_size:
            run_batch(pipeline, batch, sink)
            batch = []
    if batch:
        run_batch(pipeline, batch, sink)


def run_batch(pipeline: Pipeline, batch: Sequence[LoadedImage], sink: ResultSink) -> None:
    """One batch through the pipeline; results and failures to ``sink``."""
    for loaded, result in zip(batch, label_batch(pipeline, batch)):
        if isinstance(result, Exception):
            sink.failure(loaded.item, f"pipeline error: {type(result).__name__}: {result}")
        else:
            sink.result(loaded.item, result, loaded.image)


def label_batch(pipeline: Pipeline, batch: Sequence[LoadedImage]) -> list:
    """The pipeline's results for ``batch``, or per image the exception it raised alone."""
    prepared = [b.prepared for b in batch] if all(b.prepared is not None for b in batch) else None
    try:
        return pipeline([b.image for b in batch], [b.info for b in batch], prepared=prepared)
    except Exception as e:  # noqa: BLE001 - a model error on a batch: retry one by one, keep going
        if len(batch) == 1:
            return [e]
    out = []
    for b in batch:
        try:
            out += pipeline([b.image], [b.info], prepared=None if prepared is None else [b.prepared])
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out
