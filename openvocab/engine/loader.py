"""Decoding in loader workers: images are read, EXIF-rotated and prepared for each stage ahead of the models.

:class:`ImageLoader` runs :func:`openvocab.images.load_image` and the pipeline's per-stage
:meth:`~openvocab.pipeline.Pipeline.prepare` (resizing, normalising) in a thread pool (Pillow,
NumPy and torch release the GIL for the heavy parts) and yields the images in input order, at
most ``prefetch`` ahead of the consumer, so memory is bounded whatever the number of images.
``workers=0`` loads in the calling thread, one image at a time (no overlap).
"""
from __future__ import annotations

import concurrent.futures as cf
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from ..images import ImageLoadError, load_image
from ..inputs import InputItem
from ..structures import ImageInfo


@dataclass(frozen=True)
class LoadedImage:
    """A decoded input: pixels (RGB ``uint8 [H, W, 3]``, displayed orientation), info and prepared inputs."""

    item: InputItem
    image: np.ndarray
    info: ImageInfo
    prepared: Any = None


@dataclass(frozen=True)
class LoadFailure:
    """An input that could not be loaded (``error`` is one line naming the problem)."""

    item: InputItem
    error: str


Loaded = Union[LoadedImage, LoadFailure]


def default_workers() -> int:
    """Loader threads when ``--workers`` is not given: one per CPU the process may use, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def load_one(item: InputItem, *, max_pixels: Optional[int] = None,
             prepare: Optional[Callable[[np.ndarray], Any]] = None) -> Loaded:
    """Load (and prepare) one input; every failure becomes a :class:`LoadFailure`."""
    try:
        image, info = load_image(item.file, max_pixels=max_pixels)
    except ImageLoadError as e:
        return LoadFailure(item, e.message)
    except Exception as e:  # noqa: BLE001 - a loader must never stop the job
        return LoadFailure(item, f"cannot load: {type(e).__name__}: {e}")
    prepared = None
    if prepare is not None:
        try:
            prepared = prepare(image)
        except Exception as e:  # noqa: BLE001 - e.g. an image a stage cannot resize
            return LoadFailure(item, f"cannot prepare for the models: {type(e).__name__}: {e}")
    return LoadedImage(item, image, info, prepared)


class ImageLoader:
    """Iterates :class:`LoadedImage` / :class:`LoadFailure` for ``items``, in order.

    Args:
        items: the inputs to load.
        workers: loader threads (``0``: load in the consumer's thread, no read-ahead).
        prefetch: images loaded ahead of the consumer (default ``2 * workers``, at least 2).
        max_pixels: see :func:`openvocab.images.load_image`.
        prepare: per-image CPU preprocessing run in the workers (``Pipeline.prepare``).
    """

    def __init__(self, items: Sequence[InputItem], *, workers: int, prefetch: Optional[int] = None,
                 max_pixels: Optional[int] = None, prepare: Optional[Callable[[np.ndarray], Any]] = None) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.items, self.workers = items, workers
        self.prefetch = max(2, prefetch if prefetch is not None else 2 * workers)
        self.max_pixels, self.prepare = max_pixels, prepare

    def __iter__(self) -> Iterator[Loaded]:
        if self.workers == 0:
            for item in self.items:
                yield load_one(item, max_pixels=self.max_pixels, prepare=self.prepare)
            return
        pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="openvocab-loader")
        pending: deque[cf.Future] = deque()
        todo = iter(self.items)
        try:
            for item in todo:
                pending.append(pool.submit(load_one, item, max_pixels=self.max_pixels, prepare=self.prepare))
                if len(pending) >= self.prefetch:
                    break
            while pending:
                done = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(load_one, nxt, max_pixels=self.max_pixels, prepare=self.prepare))
                yield done
        finally:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
