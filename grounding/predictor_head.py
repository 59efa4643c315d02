"""The part SAM and TAP mask heads share: a predictor behind the :class:`openvocab.stages.MaskHead` interface.

A predictor has ``prepare(image)`` (CPU preprocessing), ``encode([prepared])`` (the image encoder on a
batch), ``set_embedding(embedding)`` and ``predict(boxes=..., points=..., point_labels=...)``. The job
path (:meth:`PredictorMaskHead.segment_batch`) encodes only images that have detections,
``image_batch_size`` at a time; the interactive path is ``set_image`` once, ``predict`` many times.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from openvocab.stages import MaskHead
from openvocab.structures import Detections, Regions


class PredictorMaskHead(MaskHead):
    """Subclasses build ``self.predictor`` in ``setup`` and implement :meth:`to_regions`.

    Attributes:
        image_batch_size: images encoded together by :meth:`segment_batch` (``1``: every image is encoded
            alone, so its masks never depend on the batch; larger batches keep a GPU busier).
        encoded_images: how many images the image encoder has run on (counted, for tests and benchmarks).
    """

    predictor: Any = None
    image_batch_size: int = 1
    encoded_images: int = 0

    def _require(self):
        if self.predictor is None:
            raise ValueError(f"{type(self).__name__}.setup(device) must be called first")
        return self.predictor

    def to_regions(self, prediction) -> Regions:
        raise NotImplementedError

    def prepare(self, image: np.ndarray):
        return self._require().prepare(image)

    def set_image(self, image: np.ndarray) -> None:
        self._require().set_image(image)
        self.encoded_images += 1

    def predict(self, *, boxes: Optional[np.ndarray] = None, points: Optional[np.ndarray] = None,
                point_labels: Optional[np.ndarray] = None) -> Regions:
        pred = self._require().predict(boxes=boxes, points=points, point_labels=point_labels)
        return self.to_regions(pred)

    def segment_batch(self, images: Sequence[np.ndarray], detections: Sequence[Detections],
                      prepared: Optional[Sequence[Any]] = None) -> list[Regions]:
        if len(images) != len(detections):
            raise ValueError(f"{len(images)} images but {len(detections)} detection sets")
        pred = self._require()
        out: list[Regions] = [Regions() for _ in images]
        todo = [i for i, d in enumerate(detections) if len(d)]
        for start in range(0, len(todo), self.image_batch_size):
            idx = todo[start:start + self.image_batch_size]
            inputs = [prepared[i] if prepared is not None else pred.prepare(images[i]) for i in idx]
            embeddings = pred.encode(inputs)
            self.encoded_images += len(idx)
            for i, emb in zip(idx, embeddings):
                pred.set_embedding(emb)
                out[i] = self.to_regions(pred.predict(boxes=detections[i].boxes))
        return out
