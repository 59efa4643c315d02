"""``PSALMPredictor``: images and task inputs in the user's terms -> masks at the original image size.

One model, every task: a category list (instance / panoptic / semantic masks with labels), a referring sentence
(the best-matching queries' masks) and visual prompts (boxes or points -> one mask each). The image side
(Swin, projector, pixel decoder) is encoded once per image and reused by every prompt on it
(:meth:`set_image` / :meth:`encode`); the LLM and the mask decoder run once per prompt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from openvocab.stages import check_prompts

from . import postprocess as post
from .model import ImageEncoding, PSALMModel, PSALMOutput
from .preprocess import PreparedImage, preprocess_image, prompt_masks_original, transform_prompt_mask
from .prompts import PromptTokenizer
from .vision import sample_region_points

#: modes of :meth:`PSALMPredictor.categories`
MODES = ("instance", "panoptic", "semantic")


@dataclass(frozen=True)
class EncodedImage:
    """An image's :class:`ImageEncoding` (batch size 1) with its :class:`PreparedImage` geometry."""

    encoding: ImageEncoding
    prepared: PreparedImage


@dataclass(frozen=True)
class MaskResult:
    """Masks found on one image, best first.

    Attributes:
        masks: ``bool [N, H, W]`` at the original image size.
        scores: ``float32 [N]``.
        labels: ``int64 [N]``: class index into the given names (categories), region index (visual prompts) or 0.
        queries: ``int64 [N]``: the decoder query each mask comes from.
    """

    masks: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    queries: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def _result(masks: list[np.ndarray], scores, labels, queries, hw: tuple[int, int]) -> MaskResult:
    stack = np.stack(masks) if masks else np.zeros((0, *hw), bool)
    return MaskResult(masks=stack, scores=np.asarray(scores, np.float32).reshape(-1),
                      labels=np.asarray(labels, np.int64).reshape(-1),
                      queries=np.asarray(queries, np.int64).reshape(-1))


class PSALMPredictor:
    """Runs :class:`PSALMModel` on images (see the module docstring).

    Args:
        model: the network (eval mode is set here).
        tokenizer: PSALM's tokenizer (with ``[SEG]``).
        region_seed: seed of the point sampling inside visual-prompt masks (the official code samples with the
            global RNG; a seeded generator per call makes results repeatable).
        chunk: queries upsampled to the original size at a time (bounds memory on large images).
    """

    def __init__(self, *, model: PSALMModel, tokenizer, region_seed: int = 0, chunk: int = 16) -> None:
        self.model = model.eval()
        self.prompts = PromptTokenizer(tokenizer=tokenizer)
        self.region_seed, self.chunk = region_seed, chunk
        self.current: Optional[EncodedImage] = None

    @property
    def config(self):
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.seg_query.device

    def prepare(self, image: np.ndarray) -> PreparedImage:
        c = self.config
        return preprocess_image(image, size=c.image_size, mean=c.pixel_mean, std=c.pixel_std, pad_value=c.pad_value)

    @torch.inference_mode()
    def encode(self, prepared: Sequence[PreparedImage]) -> list[EncodedImage]:
        """The image side of a batch of prepared images."""
        if not prepared:
            return []
        dtype = self.model.seg_query.dtype
        pixels = torch.stack([p.pixels for p in prepared]).to(self.device, dtype)
        enc = self.model.encode_image(pixels)
        return [EncodedImage(encoding=enc.item(i), prepared=p) for i, p in enumerate(prepared)]

    def set_embedding(self, encoded: EncodedImage) -> None:
        self.current = encoded

    def set_image(self, image: np.ndarray) -> None:
        self.current = self.encode([self.prepare(image)])[0]

    def _image(self, encoded: Optional[EncodedImage]) -> EncodedImage:
        encoded = encoded or self.current
        if encoded is None:
            raise ValueError("no image: call set_image(image) first (or pass encoded=)")
        return encoded

    def masks(self, encoded: EncodedImage, out: PSALMOutput, queries: Sequence[int]) -> torch.Tensor:
        """Mask logits of ``queries`` at the original image size ``[n, H, W]`` (float32)."""
        p = encoded.prepared
        idx = torch.as_tensor(list(queries), dtype=torch.long)
        if len(idx) == 0:
            return torch.zeros((0, *p.original_hw), device=out.mask_logits.device)
        return post.upsample_masks(out.mask_logits[0][idx.to(out.mask_logits.device)],
                                   padded_size=self.config.padded_size, resized_hw=p.resized_hw,
                                   original_hw=p.original_hw)

    def all_mask_scores(self, encoded: EncodedImage, out: PSALMOutput) -> torch.Tensor:
        """Every query's mask score ``[Q]`` at the original size, ``chunk`` queries at a time."""
        q = out.mask_logits.shape[1]
        return torch.cat([post.mask_scores(self.masks(encoded, out, range(s, min(s + self.chunk, q))))
                          for s in range(0, q, self.chunk)])

    @torch.inference_mode()
    def run(self, encoded: EncodedImage, prompt, region_points: Optional[torch.Tensor] = None) -> PSALMOutput:
        return self.model.decode(encoded.encoding, prompt, region_points)

    @torch.inference_mode()
    def categories(self, names: Sequence[str], *, mode: str = "instance", encoded: Optional[EncodedImage] = None,
                   threshold: float = 0.0, max_detections: Optional[int] = None) -> MaskResult:
        """Masks of the classes ``names`` (``background`` is added by PSALM). ``instance``: the official instance
        inference (top (query, class) pairs; score = class probability x mask score); ``panoptic``: the official
        panoptic inference with every class a thing (non-overlapping masks; score = class probability);
        ``semantic``: one mask per class that wins pixels of the per-pixel argmax (score = the class's mean share
        of the semantic map there). Results with a score below ``threshold`` or an empty mask are dropped."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES} (got {mode!r})")
        encoded = self._image(encoded)
        out = self.run(encoded, self.prompts.categories(names, task="semantic" if mode == "semantic" else "panoptic"))
        logits = out.class_logits[0].float()
        found = {"instance": self._instances, "panoptic": self._panoptic, "semantic": self._semantic}[mode](
            encoded, out, logits, threshold, max_detections)
        found.sort(key=lambda f: -f[1])  # stable: ties keep the official order
        found = found[:max_detections]
        return _result([f[0] for f in found], [f[1] for f in found], [f[2] for f in found], [f[3] for f in found],
                       encoded.prepared.original_hw)

    def _instances(self, encoded, out, logits, threshold, limit) -> list[tuple]:
        """Official instance inference: the top Q (query, class) pairs by class probability, scored x mask score."""
        class_scores, top_q, top_l = post.instance_topk(logits, logits.shape[0])
        final = class_scores.cpu() * self.all_mask_scores(encoded, out).cpu()[top_q.cpu()]
        found, cache = [], {}
        for i in torch.argsort(final, descending=True, stable=True).tolist():
            q, score = int(top_q[i]), float(final[i])
            if score < threshold or (limit is not None and len(found) >= limit):
                break
            if q not in cache:
                cache[q] = (self.masks(encoded, out, [q])[0] > 0).cpu().numpy()
            if cache[q].any():
                found.append((cache[q], score, int(top_l[i]), q))
        return found

    def _panoptic(self, encoded, out, logits, threshold, limit) -> list[tuple]:
        """Official panoptic inference, every class a thing: one non-overlapping segment per kept query."""
        kept, kept_scores, kept_labels = post.panoptic_queries(logits)
        seg_map, segments = post.panoptic_segments(self.masks(encoded, out, kept.tolist()), kept, kept_scores,
                                                   kept_labels, [True] * (logits.shape[1] - 1))
        return [((seg_map == seg.id).cpu().numpy(), seg.score, seg.category_id, seg.query)
                for seg in segments if seg.score >= threshold]

    def _semantic(self, encoded, out, logits, threshold, limit) -> list[tuple]:
        """Official semantic map; per class the pixels where it wins the argmax, scored by its mean share there."""
        q = logits.shape[0]
        sem = sum(post.semantic_map(logits[s:s + self.chunk],
                                    self.masks(encoded, out, range(s, min(s + self.chunk, q))))
                  for s in range(0, q, self.chunk))
        winner, share = sem.argmax(0), sem / sem.sum(0, keepdim=True).clamp_min(1e-12)
        found = []
        for c in range(sem.shape[0]):
            region = winner == c
            if bool(region.any()) and float(share[c][region].mean()) >= threshold:
                found.append((region.cpu().numpy(), float(share[c][region].mean()), c, -1))
        return found

    @torch.inference_mode()
    def refer(self, sentences: Sequence[str] | str, *, encoded: Optional[EncodedImage] = None, top_k: int = 1,
              threshold: float = 0.0) -> MaskResult:
        """Referring segmentation: the ``top_k`` queries by ``sigmoid([SEG] logit) x mask score`` (the official
        evaluation keeps the top 1), scores at least ``threshold``, non-empty masks."""
        encoded = self._image(encoded)
        out = self.run(encoded, self.prompts.referring(sentences))
        scores = out.seg_logits[0].reshape(-1).float().sigmoid().cpu() * self.all_mask_scores(encoded, out).cpu()
        order = torch.argsort(scores, descending=True, stable=True)[:top_k].tolist()
        masks, kept = [], []
        for q in order:
            m = (self.masks(encoded, out, [q])[0] > 0).cpu().numpy()
            if float(scores[q]) >= threshold and m.any():
                masks.append(m)
                kept.append(q)
        return _result(masks, scores[kept].numpy(), np.zeros(len(kept)), kept, encoded.prepared.original_hw)

    def region_points(self, masks: torch.Tensor) -> torch.Tensor:
        """``[K, P, 2]`` sampled points of prompt masks ``[K, S, S]`` (seeded: repeatable)."""
        g = torch.Generator().manual_seed(self.region_seed)
        return torch.stack([sample_region_points(m, self.config.region_points, g) for m in masks.cpu()])

    @torch.inference_mode()
    def regions(self, masks: torch.Tensor, *, encoded: Optional[EncodedImage] = None) -> MaskResult:
        """Visual prompts as masks ``bool [K, S, S]`` (model input space) -> per region the best query's mask
        (official evaluation: top 1 of ``sigmoid(region logit) x mask score``); ``labels`` = region index."""
        encoded = self._image(encoded)
        out = self.run(encoded, self.prompts.regions(len(masks)), self.region_points(masks))
        scores = (out.region_logits.float().sigmoid().cpu() * self.all_mask_scores(encoded, out).cpu()[None])
        best = scores.argmax(1)
        full = {q: (self.masks(encoded, out, [q])[0] > 0).cpu().numpy() for q in set(best.tolist())}
        k = len(masks)
        return _result([full[int(q)] for q in best], scores[torch.arange(k), best].numpy(), np.arange(k),
                       best.numpy(), encoded.prepared.original_hw)

    @torch.inference_mode()
    def predict(self, *, boxes: Optional[np.ndarray] = None, points: Optional[np.ndarray] = None,
                point_labels: Optional[np.ndarray] = None, encoded: Optional[EncodedImage] = None) -> MaskResult:
        """Boxes (xyxy) or points (xy, label 1 = foreground) in original pixels -> one mask per prompt, in prompt
        order. A prompt with a box uses the box (points of that row are ignored); otherwise its foreground points,
        each a disc of radius 10 px (background points do not exist in PSALM)."""
        p = check_prompts(boxes, points, point_labels)
        encoded = self._image(encoded)
        originals = prompt_masks_original(boxes=p.boxes, points=p.points, point_labels=p.point_labels,
                                          original_hw=encoded.prepared.original_hw)
        masks = torch.stack([transform_prompt_mask(m, self.config.image_size) for m in originals])
        return self.regions(masks, encoded=encoded)
