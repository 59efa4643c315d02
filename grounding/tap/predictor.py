"""TapPredictor: ``set_image`` once, then boxes / points in batches (SAM predictor style)."""
from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

from openvocab.images import resize_bilinear
from openvocab.masks import encode_mask
from openvocab.stages import check_prompts

from .concepts import ConceptMatrix
from .model import TapModel
from .prompt_encoder import LABEL_BOX_LT, LABEL_BOX_RB, LABEL_PAD, normalize_points
from .text_decoder import generate_greedy
from .transforms import ResizeInfo, compute_resize, postprocess_masks, resize_and_pad


@dataclass(frozen=True)
class TapInput:
    """A prepared image: the padded BGR ``uint8 [S, S, 3]`` canvas and how it maps to the original."""

    canvas: np.ndarray
    info: ResizeInfo


@dataclass(frozen=True)
class TapEmbedding:
    """An encoded image: ``features [1, D, S/16, S/16]`` and its :class:`ResizeInfo`."""

    features: torch.Tensor
    info: ResizeInfo


@dataclass
class TapPrediction:
    """Per prompt (N prompts) outputs on the current image.

    Attributes:
        masks: ``bool [N, H, W]`` at the original image size.
        mask_index: ``int64 [N]`` chosen output of the 4 (boxes: 0; points: best IoU of 1..3).
        scores: ``float32 [N]`` predicted IoU of the chosen mask.
        iou_pred: ``float32 [N, 4]`` all predicted IoUs.
        sem_embeds: ``float32 [N, E]`` chosen semantic embedding.
        concept_index / concept_scores: ``[N, k]`` top-k concept indices and softmax scores
            (``None`` without a concept matrix); ``concept_names`` the matching names.
        captions: ``N`` strings (``None`` if captioning is off).
        caption_tokens: ``int64 [N, T]`` raw token rows (BOS first), or ``None``.
        rles: the ``N`` masks as COCO RLE (made beside the decoder; ``None``: not made).
    """

    masks: np.ndarray
    mask_index: np.ndarray
    scores: np.ndarray
    iou_pred: np.ndarray
    sem_embeds: np.ndarray
    concept_index: Optional[np.ndarray] = None
    concept_scores: Optional[np.ndarray] = None
    concept_names: Optional[list[list[str]]] = None
    captions: Optional[list[str]] = None
    caption_tokens: Optional[np.ndarray] = None
    rles: Optional[list[dict]] = None


def select_mask_index(iou_pred: torch.Tensor, labels: torch.Tensor,
                      multimask: Union[str, int] = "auto") -> torch.Tensor:
    """Official rule: prompts whose first label is a box corner take 0, others argmax of 1..3."""
    n, m = iou_pred.shape
    if multimask != "auto":
        if not isinstance(multimask, int) or not 0 <= multimask < m:
            raise ValueError(f"multimask must be 'auto' or an index in [0, {m}) (got {multimask!r})")
        return torch.full((n,), multimask, dtype=torch.int64, device=iou_pred.device)
    best_point = iou_pred[:, 1:].argmax(1) + 1
    return torch.where(labels[:, 0] == LABEL_BOX_LT, torch.zeros_like(best_point), best_point)


class TapPredictor:
    """Masks, concepts and captions for box / point prompts on one image at a time."""

    def __init__(self, model: TapModel, *, tokenizer=None, concepts: Optional[ConceptMatrix] = None,
                 top_k_concepts: int = 3, caption: bool = True,
                 max_caption_tokens: Optional[int] = None, multimask: Union[str, int] = "auto",
                 prompt_batch_size: int = 64) -> None:
        if prompt_batch_size < 1:
            raise ValueError(f"prompt_batch_size must be >= 1 (got {prompt_batch_size})")
        if top_k_concepts < 1:
            raise ValueError(f"top_k_concepts must be >= 1 (got {top_k_concepts})")
        if caption and tokenizer is None:
            raise ValueError("captioning needs a tokenizer (or caption=False)")
        sem_dim = model.image_decoder.sem_pred.layers[-1].out_features
        if concepts is not None and concepts.dim != sem_dim:
            raise ValueError(f"concept matrix has {concepts.dim} dims but the model's semantic "
                             f"embeddings have {sem_dim}")
        self.model, self.tokenizer, self.concepts = model, tokenizer, concepts
        self.top_k, self.caption, self.multimask = top_k_concepts, caption, multimask
        self.max_caption_tokens, self.prompt_batch_size = max_caption_tokens, prompt_batch_size
        self._emb: Optional[torch.Tensor] = None
        self._info: Optional[ResizeInfo] = None

    @property
    def resize_info(self) -> Optional[ResizeInfo]:
        return self._info

    @torch.inference_mode()
    def set_image(self, image: np.ndarray, *, bgr: bool = False) -> None:
        """Encode ``uint8 [H, W, 3]`` (RGB unless ``bgr``; the model itself consumes BGR)."""
        self._emb = self._info = None
        (emb,) = self.encode([self.prepare(image, bgr=bgr)])
        self.set_embedding(emb)

    def prepare(self, image: np.ndarray, *, bgr: bool = False) -> TapInput:
        """CPU preprocessing of one image (no model use: safe in loader threads)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        info = compute_resize(image.shape[0], image.shape[1], self.model.image_size)
        # resizing works on each channel alone, so reversing the channels after it gives the same pixels
        # as before it, at a fraction of the memory traffic
        small = resize_bilinear(image, *info.input_size)
        return TapInput(canvas=resize_and_pad(small if bgr else small[..., ::-1], info, self.model.pixel_mean_value),
                        info=info)

    @torch.inference_mode()
    def encode(self, inputs: Sequence[TapInput]) -> list[TapEmbedding]:
        """Image embeddings of prepared images, encoded together as one batch."""
        if not inputs:
            return []
        canvases = torch.from_numpy(np.stack([x.canvas for x in inputs]))
        emb = self.model(self.model.normalize(canvases))
        return [TapEmbedding(features=emb[i:i + 1], info=x.info) for i, x in enumerate(inputs)]

    def set_embedding(self, embedding: TapEmbedding) -> None:
        """Make ``embedding`` (from :meth:`encode`) the current image."""
        self._emb, self._info = embedding.features, embedding.info

    def _prompts(self, boxes, points, point_labels) -> tuple[np.ndarray, np.ndarray]:
        """Original-pixel prompts -> resized-frame points ``float32 [N, K, 2]``, labels ``[N, K]``."""
        s = np.float32(self._info.scale)
        pr = check_prompts(boxes, points, point_labels)
        n = pr.count
        parts_xy, parts_lab = [], []
        if pr.boxes is not None:
            parts_xy.append(pr.boxes.reshape(n, 2, 2))
            parts_lab.append(np.tile(np.array([[LABEL_BOX_LT, LABEL_BOX_RB]], np.int64), (n, 1)))
        if pr.points is not None:
            parts_xy.append(pr.points)
            parts_lab.append(np.where(pr.point_labels < 0, LABEL_PAD, pr.point_labels))
            if pr.boxes is None:  # as the official demos: a padding point closes a point prompt
                parts_xy.append(np.zeros((n, 1, 2), np.float32))
                parts_lab.append(np.full((n, 1), LABEL_PAD, np.int64))
        xy = np.concatenate(parts_xy, axis=1)
        lab = np.concatenate(parts_lab, axis=1)
        xy = np.where((lab == LABEL_PAD)[..., None], xy, xy * s).astype(np.float32)
        return xy, lab

    @torch.inference_mode()
    def predict_points(self, xy: np.ndarray, labels: np.ndarray) -> TapPrediction:
        """Prompts already in the resized frame (``xy [N, K, 2]``, official labels 0..4)."""
        if self._emb is None:
            raise ValueError("call set_image before predict")
        chunks = []
        for i in range(0, len(xy), self.prompt_batch_size):
            chunks.append(self._predict_chunk(xy[i:i + self.prompt_batch_size],
                                              labels[i:i + self.prompt_batch_size]))
        return _concat(chunks, len(xy), self._info.original_size)

    def predict(self, *, boxes=None, points=None, point_labels=None) -> TapPrediction:
        """Boxes ``[N, 4]`` xyxy and/or points ``[N, P, 2]`` + labels ``[N, P]``, original pixels."""
        if self._emb is None:
            raise ValueError("call set_image before predict")
        xy, labels = self._prompts(boxes, points, point_labels)
        return self.predict_points(xy, labels)

    def _predict_chunk(self, xy: np.ndarray, labels_np: np.ndarray) -> TapPrediction:
        model = self.model
        coords = torch.from_numpy(normalize_points(xy, model.image_size))
        labels = torch.from_numpy(labels_np)
        _, out = model.decode(self._emb, coords, labels)
        idx = select_mask_index(out.iou_pred, labels.to(out.iou_pred.device), self.multimask)
        rows = torch.arange(len(idx), device=idx.device)
        # the masks' upsampling to the original size runs beside the concepts and the caption decoder (on the
        # CPU the two are the largest costs after the encoder; the same operations, so the same numbers)
        logits = out.mask_pred[rows, idx]
        full = np.empty((len(idx),) + tuple(self._info.original_size), bool)
        rles = [_MASK_THREADS.submit(_full_size_mask, logits[i:i + 1], self._info, full[i])
                for i in range(len(idx))]
        sem = out.sem_embeds[rows, idx]
        pred = TapPrediction(masks=full, mask_index=idx.cpu().numpy(),
                             scores=out.iou_pred[rows, idx].cpu().numpy(),
                             iou_pred=out.iou_pred.cpu().numpy(), sem_embeds=sem.float().cpu().numpy())
        if self.concepts is not None:
            ci, cs = self.concepts.topk(sem, self.top_k)
            pred.concept_index, pred.concept_scores = ci, cs
            pred.concept_names = [[self.concepts.names[j] for j in row] for row in ci]
        if self.caption:
            tok = self.tokenizer
            max_gen = None if self.max_caption_tokens is None else self.max_caption_tokens + 1
            gen = generate_greedy(model.text_decoder, out.sem_tokens[rows, idx], bos_id=tok.bos_id,
                                  eos_id=tok.eos_id, pad_id=tok.pad_id, max_gen_len=max_gen)
            pred.caption_tokens = gen.tokens
            pred.captions = tok.detokenize(gen.tokens)
        pred.rles = [r.result() for r in rles]
        return pred


#: threads that turn mask logits into full-size boolean masks and their RLEs, one mask each, while the predictor
#: goes on (the upsampling runs without the GIL, the RLE encoding with it: two threads keep both going)
_MASK_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="tap-masks")


@torch.inference_mode()
def _full_size_mask(logits: torch.Tensor, info: ResizeInfo, out: np.ndarray) -> dict:
    """One mask's logits ``[1, h', w']`` -> ``out`` (``bool [H, W]``, original size); returns its RLE."""
    out[:] = (postprocess_masks(logits, info) > 0)[0].cpu().numpy()
    return encode_mask(out)


def _concat(chunks: list[TapPrediction], n: int, size: tuple[int, int]) -> TapPrediction:
    if not chunks:
        return TapPrediction(masks=np.zeros((0,) + tuple(size), bool), mask_index=np.zeros(0, np.int64),
                             scores=np.zeros(0, np.float32), iou_pred=np.zeros((0, 4), np.float32),
                             sem_embeds=np.zeros((0, 0), np.float32))
    if len(chunks) == 1:
        return chunks[0]
    c0 = chunks[0]

    def cat(name):
        return None if getattr(c0, name) is None else np.concatenate([getattr(c, name) for c in chunks])

    def join(name):
        return None if getattr(c0, name) is None else [x for c in chunks for x in getattr(c, name)]

    tokens = None
    if c0.caption_tokens is not None:  # rows of different chunks may have different widths
        width = max(c.caption_tokens.shape[1] for c in chunks)
        tokens = np.concatenate([np.pad(c.caption_tokens, ((0, 0), (0, width - c.caption_tokens.shape[1])))
                                 for c in chunks])
    return TapPrediction(masks=cat("masks"), mask_index=cat("mask_index"), scores=cat("scores"),
                         iou_pred=cat("iou_pred"), sem_embeds=cat("sem_embeds"),
                         concept_index=cat("concept_index"), concept_scores=cat("concept_scores"),
                         concept_names=join("concept_names"), captions=join("captions"),
                         caption_tokens=tokens, rles=join("rles"))
