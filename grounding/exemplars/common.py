"""What the exemplar stages share: option checks, the examples' queries cached per example set, and turning a
class's mask into instances (one per connected region, or one per class)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Optional, TypeVar

import numpy as np

from openvocab.examples import ExampleSet
from openvocab.masks import encode_mask, mask_box
from openvocab.structures import Detections, Instances, Regions

#: how a class's mask becomes instances: each connected region, or the whole mask as one
SPLITS = ("components", "none")

T = TypeVar("T")


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (got {split!r})")
    return split


class PerExampleSet(Generic[T]):
    """What a stage computes once per example set (queries, prototypes), kept for the last few sets by content."""

    def __init__(self, make: Callable[[ExampleSet], T], *, keep: int = 4) -> None:
        self._make, self._keep = make, keep
        self._items: OrderedDict[str, T] = OrderedDict()

    def get(self, examples: ExampleSet) -> T:
        if not isinstance(examples, ExampleSet):
            raise ValueError(f"examples must be an openvocab.examples.ExampleSet, got {type(examples).__name__}")
        key = examples.key
        if key not in self._items:
            self._items[key] = self._make(examples)
            while len(self._items) > self._keep:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        return self._items[key]

    def clear(self) -> None:
        self._items.clear()


def mask_instances(mask: np.ndarray, confidence: np.ndarray, label: str, *, split: str,
                   min_area: float) -> Optional[Instances]:
    """A class's ``bool [H, W]`` mask -> its instances: each connected region (8-connected) of at least
    ``min_area`` of the image (``split='components'``) or the whole mask (``'none'``), scored by the mean of
    ``confidence`` (``float [H, W]`` in [0, 1]) inside it; ``None`` when nothing is left."""
    from scipy import ndimage

    if split == "none":
        parts = [mask] if mask.any() else []
    else:
        labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
        parts = [labels == k for k in range(1, n + 1)]
    parts = [p for p in parts if p.sum() >= max(min_area * p.size, 1)]
    if not parts:
        return None
    scores = [float(confidence[p].mean()) for p in parts]
    return Instances(Detections(boxes=np.stack([mask_box(p) for p in parts]), scores=scores,
                                labels=(label,) * len(parts)),
                     Regions(masks=tuple(encode_mask(p) for p in parts), mask_scores=scores))
