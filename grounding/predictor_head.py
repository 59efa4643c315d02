"""The part SAM and TAP mask heads share: a predictor behind the :class:`openvocab.stages.MaskHead` interface.

A predictor has ``prepare(image)`` (CPU preprocessing), ``encode([prepared])`` (the image encoder on a
batch), ``set_embedding(embedding)`` and ``predict(boxes=..., points=..., point_labels=...)``. The job
path (:meth:`PredictorMaskHead.segment_batch`) encodes only images that have detections,
``image_batch_size`` at a time; the interactive path is ``set_image`` once, ``predict`` many times.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from openvocab.dtypes import check_device_dtype, torch_dtype
from openvocab.stages import MaskHead
from openvocab.structures import Detections, Regions


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1 (got {value!r})")
    return value


class PredictorMaskHead(MaskHead):
    """Subclasses call :meth:`_set_options` in their constructor, build ``self.predictor`` in ``setup`` and implement
    :meth:`to_regions`.

    Attributes:
        image_batch_size: images encoded together by :meth:`segment_batch` (``1``: every image is encoded
            alone, so its masks never depend on the batch; larger batches keep a GPU busier).
        encoded_images: how many images the image encoder has run on (counted, for tests and benchmarks).
    """

    predictor: Any = None
    image_batch_size: int = 1
    encoded_images: int = 0
    #: the model family's name, for messages (``"SAM"``, ``"TAP"``)
    family = "mask head"

    def _set_options(self, *, builders: Mapping[str, Callable], checkpoint_variant: Mapping[str, str], variant: str,
                     checkpoint: Optional[str], multimask: Union[str, int], prompt_batch_size: int,
                     image_batch_size: int, dtype: str, seed: int, model_kwargs: Optional[dict]) -> None:
        """Check and keep the options both SAM and TAP take (one rule each, ``ValueError`` naming it)."""
        if variant not in builders:
            raise ValueError(f"unknown {self.family} variant {variant!r} (choose from {sorted(builders)})")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise ValueError(f"checkpoint must be a name, a path or None (got {checkpoint!r})")
        if checkpoint in checkpoint_variant and checkpoint_variant[checkpoint] != variant:
            raise ValueError(f"checkpoint {checkpoint!r} is for variant {checkpoint_variant[checkpoint]!r}, "
                             f"not {variant!r}")
        torch_dtype(dtype)
        if multimask != "auto" and (isinstance(multimask, bool) or not isinstance(multimask, int)
                                    or not 0 <= multimask < 4):
            raise ValueError(f"multimask must be 'auto' or 0..3 (got {multimask!r})")
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise ValueError(f"model_kwargs must be a dict (got {type(model_kwargs).__name__})")
        self.variant, self.checkpoint, self.multimask = variant, checkpoint, multimask
        self.prompt_batch_size = _positive_int("prompt_batch_size", prompt_batch_size)
        self.image_batch_size = _positive_int("image_batch_size", image_batch_size)
        self.dtype, self.seed = dtype, seed
        self.model_kwargs = dict(model_kwargs or {})
        self.encoded_images = 0
        self.predictor = None
        self.device: Optional[str] = None

    def _torch_dtype(self, device: str) -> torch.dtype:
        """The configured dtype, checked against ``device``."""
        dtype = torch_dtype(self.dtype)
        check_device_dtype(dtype, device)
        return dtype

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
