"""``PSALMMaskHead``: boxes (from any detector) or points -> one mask each, through PSALM's visual prompts.

All prompts of an image go into one prompt (``<region>`` per box), as PSALM's interactive evaluation does: the
regions are read together by the language model, so a region's mask can depend on the other prompts of the call.
"""
from __future__ import annotations

from typing import Any, Optional

from openvocab.masks import encode_mask
from openvocab.registry import MASK_HEADS
from openvocab.structures import Regions

from ..predictor_head import PredictorMaskHead
from .predictor import MaskResult
from .stage_base import PSALMStage
from .weights import HF_REPO


@MASK_HEADS.register_module()
class PSALMMaskHead(PSALMStage, PredictorMaskHead):
    """PSALM's interactive segmentation as a SAM-like mask head.

    A box prompt is its filled rectangle; a point prompt (label 1) a disc of radius 10 px around it; background
    points do not exist in PSALM (ignored). The mask is the best-scoring query's (``sigmoid(region logit) x mask
    score``; the score is ``mask_scores``).

    Args:
        checkpoint, variant, revision, dtype, seed (point sampling inside prompts), image_batch_size,
        model_kwargs: :class:`.stage_base.PSALMStage`.
    """

    def __init__(self, *, checkpoint: Optional[str] = HF_REPO, variant: str = "psalm",
                 revision: Optional[str] = None, dtype: str = "float32", seed: int = 0, image_batch_size: int = 1,
                 model_kwargs: Optional[dict[str, Any]] = None) -> None:
        self._init_weights(checkpoint=checkpoint, variant=variant, revision=revision, dtype=dtype, seed=seed,
                           image_batch_size=image_batch_size, model_kwargs=model_kwargs)

    def to_regions(self, prediction: MaskResult) -> Regions:
        return Regions(masks=tuple(encode_mask(m) for m in prediction.masks), mask_scores=prediction.scores)
