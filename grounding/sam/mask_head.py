"""The registered SAM mask head stage (masks + predicted IoU; no concepts or captions)."""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch
from segment_anything.modeling import Sam

from openvocab import hub
from openvocab.checkpoint import load_strict, read_state_dict
from openvocab.masks import encode_mask
from openvocab.registry import MASK_HEADS
from openvocab.structures import Regions

from ..predictor_head import PredictorMaskHead
from .model import BUILDERS
from .predictor import SamBatchPredictor, SamPrediction
from .weights import CHECKPOINT_VARIANT, CHECKPOINTS

@MASK_HEADS.register_module()
class SAMMaskHead(PredictorMaskHead):
    """Segment Anything (official ``segment_anything`` modules): one mask and its IoU per prompt.

    Args:
        variant: ``"vit_b" | "vit_l" | "vit_h" | "tiny"`` (build function, see :mod:`.model`).
        checkpoint: an official checkpoint name (``sam_vit_h_4b8939``, ``sam_vit_l_0b3195``,
            ``sam_vit_b_01ec64``; downloaded and cached), a path to a ``.pth`` / ``.pt`` /
            ``.safetensors`` state_dict, or ``None`` for random weights.
        multimask: ``"auto"`` (SAM's convention: boxes -> the single-mask output 0, point-only
            prompts -> the best predicted IoU of the multimask outputs 1..3) or a fixed index 0..3.
        mask_threshold: logit threshold of the masks (SAM: 0.0).
        prompt_batch_size: prompts decoded together (one decoder call per batch).
        image_batch_size: images encoded together in a job (:meth:`segment_batch`; ``1``: results never
            depend on the batch).
        dtype: ``"float32"`` or ``"bfloat16"`` (``"float16"`` on CUDA) for the image encoder; the
            prompt encoder and mask decoder (a few M parameters) stay float32.
        seed: seed of the random initialisation (checkpoint ``None``).
        model_kwargs: extra keyword arguments of the build function (e.g. ``image_size``).
    """

    family = "SAM"

    def __init__(self, *, variant: str = "vit_h", checkpoint: Optional[str] = "sam_vit_h_4b8939",
                 multimask: Union[str, int] = "auto", mask_threshold: float = 0.0,
                 prompt_batch_size: int = 64, image_batch_size: int = 1, dtype: str = "float32", seed: int = 0,
                 model_kwargs: Optional[dict[str, Any]] = None) -> None:
        self._set_options(builders=BUILDERS, checkpoint_variant=CHECKPOINT_VARIANT, variant=variant,
                          checkpoint=checkpoint, multimask=multimask, prompt_batch_size=prompt_batch_size,
                          image_batch_size=image_batch_size, dtype=dtype, seed=seed, model_kwargs=model_kwargs)
        if isinstance(mask_threshold, bool) or not isinstance(mask_threshold, (int, float)) \
                or not np.isfinite(mask_threshold):
            raise ValueError(f"mask_threshold must be a finite number (got {mask_threshold!r})")
        self.mask_threshold = float(mask_threshold)

    def required_files(self) -> list[str]:
        if self.checkpoint is None:
            return []
        spec = CHECKPOINTS.get(self.checkpoint)
        return [f"{spec.filename} ({spec.source})" if spec else str(self.checkpoint)]

    def remote_files(self) -> list:
        return [CHECKPOINTS[self.checkpoint]] if self.checkpoint in CHECKPOINTS else []

    def build_model(self) -> Sam:
        """The model with the configured weights (random if ``checkpoint`` is ``None``), on CPU."""
        path = None
        if self.checkpoint is not None:  # a missing file fails before a big model is built
            path = hub.resolve(CHECKPOINTS.get(self.checkpoint, self.checkpoint))
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = BUILDERS[self.variant](**self.model_kwargs)
        except TypeError as e:
            raise ValueError(f"bad model_kwargs for SAM variant {self.variant!r}: {e}") from None
        if path is not None:
            load_strict(model, read_state_dict(path), source=str(path))
        return model.eval()

    def setup(self, device: str = "cpu") -> None:
        if self.predictor is not None and self.device == device:
            return
        dtype = self._torch_dtype(device)
        model = self.build_model().to(device)
        model.image_encoder.to(dtype)
        self.predictor = SamBatchPredictor(model, multimask=self.multimask,
                                           mask_threshold=self.mask_threshold,
                                           prompt_batch_size=self.prompt_batch_size)
        self.device = device

    def to_regions(self, prediction) -> Regions:
        return to_regions(prediction)


def to_regions(pred: SamPrediction) -> Regions:
    """:class:`SamPrediction` -> :class:`openvocab.structures.Regions` (RLE masks, no concepts)."""
    return Regions(masks=tuple(encode_mask(m) for m in pred.masks),
                   mask_scores=np.asarray(pred.scores, dtype=np.float32))
