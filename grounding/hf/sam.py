"""``HFSamMaskHead``: SAM, SAM-HQ and SAM 2 through ``transformers`` (masks and predicted IoU).

Preprocessing is the model's image processor (one image at a time, in the job's loader workers); the
image encoder runs on batches of images that have boxes (``image_batch_size``); prompts are decoded
``prompt_batch_size`` at a time against one image's embedding, and the masks are brought back to the
image by the processor's ``post_process_masks``. Box and point coordinates are mapped from the image to
the model's input as the processors map them (scaled by the resized size over the original size).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from openvocab.masks import encode_mask
from openvocab.registry import MASK_HEADS
from openvocab.stages import check_prompts
from openvocab.structures import Regions

from ..predictor_head import PredictorMaskHead
from .loading import HubModel, Loaded, check_dtype, check_model, check_positive, image_size, load

#: supported ``model_type`` -> name
MODEL_TYPES = {"sam": "SAM", "sam_hq": "SAM-HQ", "sam2": "SAM 2"}


@dataclass(frozen=True)
class SamInput:
    """One processed image: ``pixel_values [3, S, S]``, its ``(h, w)`` and the ``(h, w)`` it was resized to."""

    pixel_values: torch.Tensor
    original_size: tuple[int, int]
    resized_size: tuple[int, int]


@dataclass(frozen=True)
class SamEmbedding:
    """One encoded image: the model's keyword arguments for it (batch 1) and its sizes."""

    inputs: dict
    original_size: tuple[int, int]
    resized_size: tuple[int, int]


class HFSamPredictor:
    """``prepare`` / ``encode`` / ``set_embedding`` / ``predict`` over a transformers SAM model."""

    def __init__(self, loaded: Loaded, *, multimask: Union[str, int], mask_threshold: float,
                 prompt_batch_size: int) -> None:
        self.model, self.processor, self.kind = loaded.model, loaded.processor, loaded.model_type
        self.multimask, self.mask_threshold, self.prompt_batch_size = multimask, mask_threshold, prompt_batch_size
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype
        self.embedding: Optional[SamEmbedding] = None

    def prepare(self, image: np.ndarray) -> SamInput:
        image_size(image)
        enc = self.processor.image_processor(images=image, return_tensors="pt")
        pv = enc["pixel_values"][0]
        resized = enc["reshaped_input_sizes"][0].tolist() if "reshaped_input_sizes" in enc else pv.shape[-2:]
        return SamInput(pv, tuple(int(v) for v in enc["original_sizes"][0].tolist()), tuple(int(v) for v in resized))

    def encode(self, inputs: Sequence[SamInput]) -> list[SamEmbedding]:
        pv = torch.stack([x.pixel_values for x in inputs]).to(device=self.device, dtype=self.dtype)
        with torch.no_grad():
            emb = self.model.get_image_embeddings(pv)
        out = []
        for i, x in enumerate(inputs):
            if self.kind == "sam":
                kw = {"image_embeddings": emb[i:i + 1]}
            elif self.kind == "sam_hq":
                kw = {"image_embeddings": emb[0][i:i + 1], "intermediate_embeddings": [e[i:i + 1] for e in emb[1]]}
            else:  # sam2: one tensor per feature level
                kw = {"image_embeddings": [e[i:i + 1] for e in emb]}
            out.append(SamEmbedding(kw, x.original_size, x.resized_size))
        return out

    def set_embedding(self, embedding: SamEmbedding) -> None:
        self.embedding = embedding

    def set_image(self, image: np.ndarray) -> None:
        self.set_embedding(self.encode([self.prepare(image)])[0])

    def to_input(self, coords: np.ndarray) -> torch.Tensor:
        """xy coordinates (last axis holds x, y pairs) of the original image -> the model's input frame."""
        emb = self.embedding
        (h, w), (rh, rw) = emb.original_size, emb.resized_size
        scale = np.tile(np.asarray([rw / w, rh / h]), coords.shape[-1] // 2)
        return torch.as_tensor(coords * scale, dtype=torch.float32, device=self.device)

    def predict(self, *, boxes=None, points=None, point_labels=None) -> tuple[np.ndarray, np.ndarray]:
        """``(masks bool [N, H, W], predicted IoU float32 [N])`` for N prompts on the current image."""
        if self.embedding is None:
            raise ValueError("set_image(image) must be called before predict")
        p = check_prompts(boxes, points, point_labels)
        multi = self.multimask if self.multimask != "auto" else (0 if p.boxes is not None else "best")
        masks, scores = [], []
        for s in range(0, p.count, self.prompt_batch_size):
            sl = slice(s, s + self.prompt_batch_size)
            kw = dict(self.embedding.inputs, multimask_output=multi != 0)
            if p.boxes is not None:
                kw["input_boxes"] = self.to_input(p.boxes[sl])[None]
            if p.points is not None:
                kw["input_points"] = self.to_input(p.points[sl])[None]
                kw["input_labels"] = torch.as_tensor(p.point_labels[sl], device=self.device)[None]
            with torch.no_grad():
                out = self.model(**kw)
            iou = out.iou_scores[0].float()  # [n, M]
            if multi == "best":
                pick = iou.argmax(-1)
            else:  # output 0 is the single mask (multimask_output=False), 1..3 the multimask outputs
                pick = torch.full_like(iou[:, 0], max(multi - 1, 0), dtype=torch.long)
            rows = torch.arange(len(iou), device=iou.device)
            chosen = out.pred_masks[0][rows, pick][None, :, None].float().cpu()  # [1, n, 1, h, w]
            sizes = {"original_sizes": [self.embedding.original_size]}
            if self.kind != "sam2":
                sizes["reshaped_input_sizes"] = [self.embedding.resized_size]
            full = self.processor.image_processor.post_process_masks(chosen, mask_threshold=self.mask_threshold,
                                                                     **sizes)
            masks.append(full[0][:, 0].numpy())
            scores.append(iou[rows, pick].cpu().numpy())
        return np.concatenate(masks), np.concatenate(scores).astype(np.float32)


@MASK_HEADS.register_module()
class HFSamMaskHead(HubModel, PredictorMaskHead):
    """A ``transformers`` Segment Anything model (SAM, SAM-HQ or SAM 2, by the checkpoint's model type).

    Args:
        model: Hugging Face hub id (``"facebook/sam-vit-huge"``, ``"syscv-community/sam-hq-vit-huge"``,
            ``"facebook/sam2.1-hiera-large"``) or a local folder; resolved in ``setup()``.
        revision: a hub revision to pin.
        multimask: ``"auto"`` (boxes: the single-mask output; point-only prompts: the best predicted IoU of the
            three multimask outputs) or a fixed output ``0`` (single) / ``1..3`` (multimask).
        mask_threshold: logit threshold of the masks (0.0 as the models are published).
        prompt_batch_size: prompts decoded (and masks brought to full size) together.
        image_batch_size: images encoded together in a job.
        dtype: the weights' dtype (``"float32"``, ``"bfloat16"``, ``"float16"``).
    """

    what = "transformers SAM"

    def __init__(self, *, model: str, revision: Optional[str] = None, multimask: Union[str, int] = "auto",
                 mask_threshold: float = 0.0, prompt_batch_size: int = 16, image_batch_size: int = 1,
                 dtype: str = "float32") -> None:
        check_model(model)
        if multimask != "auto" and (isinstance(multimask, bool) or multimask not in (0, 1, 2, 3)):
            raise ValueError(f"multimask must be 'auto' or 0..3 (got {multimask!r})")
        if isinstance(mask_threshold, bool) or not isinstance(mask_threshold, (int, float)) \
                or not np.isfinite(mask_threshold):
            raise ValueError(f"mask_threshold must be a finite number (got {mask_threshold!r})")
        check_positive("prompt_batch_size", prompt_batch_size)
        check_positive("image_batch_size", image_batch_size)
        self.model, self.revision, self.multimask = model, revision, multimask
        self.mask_threshold, self.prompt_batch_size = float(mask_threshold), prompt_batch_size
        self.image_batch_size, self.dtype = image_batch_size, check_dtype(dtype)
        self.encoded_images = 0
        self.predictor: Optional[HFSamPredictor] = None
        self.device: Optional[str] = None


    def setup(self, device: str = "cpu") -> None:
        if self.predictor is not None and self.device == device:
            return
        loaded = load(self.model, auto_class="AutoModel", types=MODEL_TYPES, device=device, dtype=self.dtype,
                      revision=self.revision, description="transformers Segment Anything model")
        self.predictor = HFSamPredictor(loaded, multimask=self.multimask, mask_threshold=self.mask_threshold,
                                        prompt_batch_size=self.prompt_batch_size)
        self.device = device

    def to_regions(self, prediction: Any) -> Regions:
        masks, scores = prediction
        return Regions(masks=tuple(encode_mask(m) for m in masks), mask_scores=scores)
