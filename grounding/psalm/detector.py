"""``PSALMDetector``: PSALM behind the :class:`openvocab.stages.Detector` interface.

``detect`` (tags) runs the category-list prompt like :class:`.segmenter.PSALMSegmenter`; ``detect_text`` (free
text) runs PSALM's referring segmentation and returns the referred masks with their boxes (``Instances``: the
pipeline's free-text grounding writes them). In tag mode each box is its mask's extent and the masks are dropped
(a detector gives boxes; use the segmenter for tags with masks, or the mask head on these boxes).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from openvocab.registry import DETECTORS
from openvocab.stages import Detector
from openvocab.structures import Detections, Instances

from .predictor import MODES
from .stage_base import PSALMStage, check_count, check_number, to_instances, unique_names
from .weights import HF_REPO


@DETECTORS.register_module()
class PSALMDetector(PSALMStage, Detector):
    """Boxes of PSALM's masks.

    Args:
        mode / threshold / max_detections: tag mode, as :class:`.segmenter.PSALMSegmenter`.
        text_top_k: free-text mode: boxes kept per text (the official referring evaluation keeps 1), best by
            ``sigmoid([SEG] logit) x mask score``; text_threshold: their minimum score.
        checkpoint, variant, revision, dtype, seed, image_batch_size, model_kwargs: :class:`.stage_base.PSALMStage`.
    """

    def __init__(self, *, checkpoint: Optional[str] = HF_REPO, variant: str = "psalm", mode: str = "instance",
                 threshold: float = 0.3, max_detections: int = 100, text_top_k: int = 1, text_threshold: float = 0.0,
                 revision: Optional[str] = None, dtype: str = "float32", seed: int = 0, image_batch_size: int = 1,
                 model_kwargs: Optional[dict[str, Any]] = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES} (got {mode!r})")
        self.mode = mode
        self.threshold = check_number("threshold", threshold)
        self.text_threshold = check_number("text_threshold", text_threshold)
        self.max_detections = check_count("max_detections", max_detections)
        self.text_top_k = check_count("text_top_k", text_top_k)
        self._init_weights(checkpoint=checkpoint, variant=variant, revision=revision, dtype=dtype, seed=seed,
                           image_batch_size=image_batch_size, model_kwargs=model_kwargs)

    def detect(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
               prepared: Optional[Sequence[Any]] = None) -> list[Detections]:
        pred = self._require()
        if len(images) != len(tag_names) or (prepared is not None and len(prepared) != len(images)):
            raise ValueError("one list of tag names (and one prepared input) per image is required")
        names = [unique_names(n) for n in tag_names]
        out = [Detections() for _ in images]
        for i, enc in self.encode(images, prepared, [i for i, n in enumerate(names) if n]).items():
            res = pred.categories(names[i], mode=self.mode, encoded=enc, threshold=self.threshold,
                                  max_detections=self.max_detections)
            out[i] = to_instances(res, [names[i][int(c)] for c in res.labels]).detections
        return out

    def detect_text(self, images: Sequence[np.ndarray], texts: Sequence[str]) -> list[Instances]:
        """The referred object(s): ``phrases`` (and ``labels``) are the text as given. PSALM's prompt ends each
        referring sentence with a period (as its training data), so a period the text ends with is not doubled."""
        pred = self._require()
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        out = []
        for i, enc in self.encode(images).items():
            sentence = texts[i].strip().rstrip(".").strip()
            if not sentence:
                raise ValueError(f"free-text grounding needs a description, got {texts[i]!r}")
            res = pred.refer(sentence, encoded=enc, top_k=self.text_top_k, threshold=self.text_threshold)
            out.append(to_instances(res, [texts[i]] * len(res), [texts[i]] * len(res)))
        return out
