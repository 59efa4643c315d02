"""SamBatchPredictor: ``set_image`` once, then box / point prompts in batches.

The official :class:`segment_anything.SamPredictor` decodes one prompt set per call; this one
feeds ``prompt_batch_size`` prompts to SAM's prompt encoder and mask decoder at once, with the
official preprocessing (:class:`ResizeLongestSide`, ``Sam.preprocess``) and postprocessing
(``Sam.postprocess_masks``), so each mask equals what ``SamPredictor.predict`` returns for that
prompt alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from openvocab.stages import check_prompts


@dataclass(frozen=True)
class SamInput:
    """A prepared image: resized so its longest side is the encoder's size (``uint8 [h, w, 3]``)."""

    resized: np.ndarray
    original_size: tuple[int, int]


@dataclass(frozen=True)
class SamEmbedding:
    """An encoded image: ``features [1, C, 64, 64]`` float32 and the sizes it maps between."""

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]


@dataclass
class SamPrediction:
    """Per prompt (N prompts) outputs on the current image.

    Attributes:
        masks: ``bool [N, H, W]`` at the original image size.
        mask_index: ``int64 [N]`` chosen decoder output: 0 the single-mask output (SAM's
            ``multimask_output=False``), 1..3 the three multimask outputs.
        scores: ``float32 [N]`` predicted IoU of the chosen mask.
        iou_pred: ``float32 [N, 4]`` predicted IoU of all outputs, in that order.
    """

    masks: np.ndarray
    mask_index: np.ndarray
    scores: np.ndarray
    iou_pred: np.ndarray


def select_mask_index(iou_pred: torch.Tensor, has_box: bool,
                      multimask: Union[str, int] = "auto") -> torch.Tensor:
    """SAM's convention for ``"auto"``: box prompts take the single-mask output (0), point-only
    prompts the best predicted IoU of the three multimask outputs (1..3); an int fixes it."""
    n, m = iou_pred.shape
    if multimask != "auto":
        if isinstance(multimask, bool) or not isinstance(multimask, int) or not 0 <= multimask < m:
            raise ValueError(f"multimask must be 'auto' or an index in [0, {m}) (got {multimask!r})")
        return torch.full((n,), multimask, dtype=torch.int64, device=iou_pred.device)
    if has_box:
        return torch.zeros(n, dtype=torch.int64, device=iou_pred.device)
    return iou_pred[:, 1:].argmax(1) + 1


class SamBatchPredictor:
    """Masks for box / point prompts on one image at a time.

    Args:
        model: a :class:`segment_anything.modeling.Sam` (its image encoder may be in bf16/fp16;
            inputs are cast to it and the embeddings back to float32).
        multimask: ``"auto"`` or a fixed decoder output ``0..3`` (see :func:`select_mask_index`).
        mask_threshold: logit threshold of the upsampled masks (SAM: 0.0).
        prompt_batch_size: prompts decoded together.
    """

    def __init__(self, model: Sam, *, multimask: Union[str, int] = "auto", mask_threshold: float = 0.0,
                 prompt_batch_size: int = 64) -> None:
        if prompt_batch_size < 1:
            raise ValueError(f"prompt_batch_size must be >= 1 (got {prompt_batch_size})")
        if not np.isfinite(mask_threshold):
            raise ValueError(f"mask_threshold must be finite (got {mask_threshold})")
        n_out = model.mask_decoder.num_mask_tokens
        if multimask != "auto" and (isinstance(multimask, bool) or not isinstance(multimask, int)
                                    or not 0 <= multimask < n_out):
            raise ValueError(f"multimask must be 'auto' or 0..{n_out - 1} (got {multimask!r})")
        self.model, self.multimask, self.mask_threshold = model, multimask, float(mask_threshold)
        self.prompt_batch_size = prompt_batch_size
        self.transform = ResizeLongestSide(model.image_encoder.img_size)
        self.reset_image()

    def reset_image(self) -> None:
        self.features: Optional[torch.Tensor] = None
        self.original_size: Optional[tuple[int, int]] = None
        self.input_size: Optional[tuple[int, int]] = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @torch.inference_mode()
    def set_image(self, image: np.ndarray) -> None:
        """Encode an RGB ``uint8 [H, W, 3]`` image (SAM's own resize, normalisation and padding)."""
        self.reset_image()
        (emb,) = self.encode([self.prepare(image)])
        self.set_embedding(emb)

    def prepare(self, image: np.ndarray) -> SamInput:
        """CPU preprocessing of one image: SAM's longest-side resize (no model use: safe in loader threads)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        h, w = int(image.shape[0]), int(image.shape[1])
        target = self.transform.get_preprocess_shape(h, w, self.transform.target_length)
        if min(target) < 1:  # a degenerate strip (1 x 50000): keep every side >= 1 px
            from PIL import Image

            resized = np.asarray(Image.fromarray(image).resize((max(1, target[1]), max(1, target[0])),
                                                                 Image.BILINEAR))
        else:
            resized = self.transform.apply_image(image)
        return SamInput(resized=resized, original_size=(h, w))

    @torch.inference_mode()
    def encode(self, inputs: Sequence[SamInput]) -> list[SamEmbedding]:
        """Image embeddings of prepared images, encoded together as one batch."""
        if not inputs:
            return []
        x = torch.cat([self.model.preprocess(  # float32 (x - mean) / std, zero-padded to a square
            torch.as_tensor(p.resized, device=self.device).permute(2, 0, 1).contiguous()[None]) for p in inputs])
        enc = self.model.image_encoder
        features = enc(x.to(enc.patch_embed.proj.weight.dtype)).float()
        return [SamEmbedding(features=features[i:i + 1], original_size=p.original_size,
                             input_size=(int(p.resized.shape[0]), int(p.resized.shape[1])))
                for i, p in enumerate(inputs)]

    def set_embedding(self, embedding: SamEmbedding) -> None:
        """Make ``embedding`` (from :meth:`encode`) the current image."""
        self.features = embedding.features
        self.original_size, self.input_size = embedding.original_size, embedding.input_size

    def _prompts(self, boxes, points, point_labels):
        """Original-pixel prompts -> ``(N, boxes [N, 4], points [N, P, 2], labels [N, P] int32)`` in the
        input frame (``None`` where not given)."""
        pr = check_prompts(boxes, points, point_labels)
        boxes = points = labels = None
        if pr.boxes is not None:
            boxes = self.transform.apply_boxes(pr.boxes, self.original_size).astype(np.float32)
        if pr.points is not None:
            points = self.transform.apply_coords(pr.points, self.original_size).astype(np.float32)
            labels = pr.point_labels.astype(np.int32)
        return pr.count, boxes, points, labels

    @torch.inference_mode()
    def predict(self, *, boxes=None, points=None, point_labels=None) -> SamPrediction:
        """Boxes ``[N, 4]`` xyxy and/or points ``[N, P, 2]`` + labels ``[N, P]``, original pixels.

        Row ``i`` of every array is one prompt (box ``i`` together with points ``i``).
        """
        if self.features is None:
            raise ValueError("call set_image before predict")
        n, boxes, points, labels = self._prompts(boxes, points, point_labels)
        chunks = []
        for i in range(0, n, self.prompt_batch_size):
            sl = slice(i, i + self.prompt_batch_size)
            chunks.append(self._predict_chunk(None if boxes is None else boxes[sl],
                                              None if points is None else points[sl],
                                              None if labels is None else labels[sl]))
        if not chunks:
            h, w = self.original_size
            n_out = self.model.mask_decoder.num_mask_tokens
            return SamPrediction(masks=np.zeros((0, h, w), bool), mask_index=np.zeros(0, np.int64),
                                 scores=np.zeros(0, np.float32), iou_pred=np.zeros((0, n_out), np.float32))
        return SamPrediction(*(np.concatenate([getattr(c, f) for c in chunks])
                               for f in ("masks", "mask_index", "scores", "iou_pred")))

    def _predict_chunk(self, boxes, points, labels) -> SamPrediction:
        model, dev = self.model, self.device
        pts = None
        if points is not None:
            pts = (torch.as_tensor(points, dtype=torch.float, device=dev),
                   torch.as_tensor(labels, dtype=torch.int, device=dev))
        box_t = None if boxes is None else torch.as_tensor(boxes, dtype=torch.float, device=dev)
        sparse, dense = model.prompt_encoder(points=pts, boxes=box_t, masks=None)
        # all 4 outputs; MaskDecoder.forward keeps [:, 0:1] (single) or [:, 1:] (multimask) of these
        low_res, iou = model.mask_decoder.predict_masks(
            image_embeddings=self.features, image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense)
        idx = select_mask_index(iou, boxes is not None, self.multimask)
        rows = torch.arange(len(idx), device=idx.device)
        chosen = low_res[rows, idx][:, None]
        masks = model.postprocess_masks(chosen, self.input_size, self.original_size)[:, 0]
        return SamPrediction(masks=(masks > self.mask_threshold).cpu().numpy(),
                             mask_index=idx.cpu().numpy(),
                             scores=iou[rows, idx].float().cpu().numpy(),
                             iou_pred=iou.float().cpu().numpy())
