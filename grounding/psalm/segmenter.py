"""``PSALMSegmenter``: an image's tags as PSALM's category list -> instance masks with labels and scores."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from openvocab.registry import SEGMENTERS
from openvocab.stages import Segmenter
from openvocab.structures import Instances

from .predictor import MODES
from .stage_base import PSALMStage, check_count, check_number, to_instances, unique_names
from .weights import HF_REPO


@SEGMENTERS.register_module()
class PSALMSegmenter(PSALMStage, Segmenter):
    """PSALM with a category list (its panoptic/instance prompt): every tag is a class; ``background`` is added.

    Args:
        mode: ``"instance"`` (the official instance inference: the best (query, class) pairs, a query may carry
            several classes; score = class probability x mask score), ``"panoptic"`` (non-overlapping masks,
            one per kept query: class probability > 0.8 and the official overlap test; score = class probability)
            or ``"semantic"`` (one mask per class from the per-pixel argmax, for stuff; the "Semantic
            Segmentation" prompt).
        threshold: minimum score. max_detections: masks kept per image, best first.
        checkpoint, variant, revision, dtype, seed, image_batch_size, model_kwargs: :class:`PSALMStage`.
    """

    def __init__(self, *, checkpoint: Optional[str] = HF_REPO, variant: str = "psalm", mode: str = "instance",
                 threshold: float = 0.3, max_detections: int = 100, revision: Optional[str] = None,
                 dtype: str = "float32", seed: int = 0, image_batch_size: int = 1,
                 model_kwargs: Optional[dict[str, Any]] = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES} (got {mode!r})")
        self.mode = mode
        self.threshold = check_number("threshold", threshold)
        self.max_detections = check_count("max_detections", max_detections)
        self._init_weights(checkpoint=checkpoint, variant=variant, revision=revision, dtype=dtype, seed=seed,
                           image_batch_size=image_batch_size, model_kwargs=model_kwargs)

    def segment(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
                prepared: Optional[Sequence[Any]] = None) -> list[Instances]:
        pred = self._require()
        if len(images) != len(tag_names) or (prepared is not None and len(prepared) != len(images)):
            raise ValueError("one list of tag names (and one prepared input) per image is required")
        names = [unique_names(n) for n in tag_names]
        out = [Instances() for _ in images]
        encoded = self.encode(images, prepared, [i for i, n in enumerate(names) if n])
        for i, enc in encoded.items():
            res = pred.categories(names[i], mode=self.mode, encoded=enc, threshold=self.threshold,
                                  max_detections=self.max_detections)
            out[i] = to_instances(res, [names[i][int(c)] for c in res.labels])
        return out
