"""A data preprocessor that hands a batch of :class:`TrainSample` objects to the model untouched.

mmengine's ``BaseModel.train_step`` calls ``data_preprocessor(batch)`` and then ``forward(**out)``
for a dict (or ``forward(*out)`` for a list). The training wrappers preprocess images themselves,
with the same function inference uses, so this preprocessor only wraps the list as
``{"data": [TrainSample, ...]}``; the model's ``forward(data, mode=...)`` gets it unchanged
(no casting, no stacking).
"""
from __future__ import annotations

from typing import Any, Sequence

from mmengine.model import BaseDataPreprocessor

from ..registry import MODELS
from .datasets import TrainSample


@MODELS.register_module()
class TrainSamplePassThrough(BaseDataPreprocessor):
    """``list[TrainSample]`` (or ``{"data": list[TrainSample]}``) -> ``{"data": list[TrainSample]}``."""

    def forward(self, data: Any, training: bool = False) -> dict:
        if isinstance(data, dict):
            if set(data) != {"data"}:
                raise ValueError(f"expected a batch {{'data': [TrainSample, ...]}}, got keys {sorted(data)}")
            data = data["data"]
        if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
            raise ValueError(f"expected a list of TrainSample, got {type(data).__name__}")
        bad = [type(s).__name__ for s in data if not isinstance(s, TrainSample)]
        if bad:
            raise ValueError(f"expected TrainSample items, got {sorted(set(bad))}")
        return {"data": list(data)}
