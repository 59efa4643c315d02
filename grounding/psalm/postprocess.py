"""PSALM's post-processing (official ``eval_seg`` and its inference functions), on tensors.

Mask logits ``[Q, S/4, S/4]`` are upsampled (bilinear) to the padded S x S, cropped to the resized image and
resized (bilinear) to the original size. Then, per task: referring (sigmoid of the ``[SEG]`` logits x mask
score), semantic (class-probability-weighted mask probabilities), instance (top-Q (query, class) pairs), panoptic
(queries kept above 0.8, per-pixel argmax, overlap test 0.8, stuff merged per class), region (region-query
sigmoid x mask score). A query's mask is ``logit > 0``; its mask score is the mean sigmoid inside that mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

OBJECT_THRESHOLD = 0.8
OVERLAP_THRESHOLD = 0.8


def upsample_masks(mask_logits: torch.Tensor, *, padded_size: int, resized_hw: tuple[int, int],
                   original_hw: tuple[int, int]) -> torch.Tensor:
    """``[Q, h, w]`` logits -> ``[Q, H, W]`` at the original image size (official ``sem_seg_postprocess``)."""
    x = F.interpolate(mask_logits[None].float(), size=(padded_size, padded_size), mode="bilinear",
                      align_corners=False)
    x = x[:, :, :resized_hw[0], :resized_hw[1]]
    return F.interpolate(x, size=tuple(original_hw), mode="bilinear", align_corners=False)[0]


def mask_scores(masks: torch.Tensor) -> torch.Tensor:
    """Mean sigmoid inside each mask (``logit > 0``): ``[Q, H, W]`` -> ``[Q]``."""
    binary = (masks > 0).flatten(1).float()
    return (masks.sigmoid().flatten(1) * binary).sum(1) / (binary.sum(1) + 1e-6)


def referring_scores(seg_logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``seg_logits [Q]`` (or ``[Q, 1]``) and masks ``[Q, H, W]`` -> per-query scores ``[Q]`` (query order; the
    official ``topk(sorted=False)`` returns the same values in an unspecified order)."""
    return seg_logits.reshape(-1).float().sigmoid() * mask_scores(masks)


def semantic_map(class_logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``[C-1, H, W]``: per class, the class probability (softmax, background column dropped) times the mask
    probability, summed over queries."""
    return torch.einsum("qc,qhw->chw", class_logits.float().softmax(-1)[:, :-1], masks.float().sigmoid())


@dataclass(frozen=True)
class InstanceResult:
    """Top (query, class) pairs, best first.

    Attributes:
        queries / labels: ``int64 [N]``; labels index the class list (background excluded).
        class_scores: ``[N]`` class probabilities; scores: ``[N]`` times the mask score.
    """

    queries: torch.Tensor
    labels: torch.Tensor
    class_scores: torch.Tensor
    scores: torch.Tensor


def instance_topk(class_logits: torch.Tensor, k: int, is_thing: Optional[Sequence[bool]] = None):
    """Official ``class_name_instance_inference`` selection: ``(class_scores, queries, labels)`` of the ``k`` best
    (query, class) pairs over the flattened ``[Q, C-1]`` probabilities, best first; with ``is_thing`` only thing
    classes are kept (panoptic mode)."""
    probs = class_logits.float().softmax(-1)[:, :-1]
    c = probs.shape[1]
    scores, flat = probs.flatten().topk(min(k, probs.numel()), sorted=True)
    queries, labels = flat // c, flat % c
    if is_thing is not None:
        keep = torch.as_tensor([bool(is_thing[int(l)]) for l in labels], dtype=torch.bool, device=labels.device)
        scores, queries, labels = scores[keep], queries[keep], labels[keep]
    return scores, queries, labels


def instance_inference(class_logits: torch.Tensor, masks: torch.Tensor, k: Optional[int] = None,
                       is_thing: Optional[Sequence[bool]] = None) -> InstanceResult:
    """:func:`instance_topk` (``k`` defaults to Q) with scores multiplied by the masks' scores."""
    class_scores, queries, labels = instance_topk(class_logits, k or class_logits.shape[0], is_thing)
    return InstanceResult(queries=queries, labels=labels, class_scores=class_scores,
                          scores=class_scores * mask_scores(masks)[queries])


@dataclass(frozen=True)
class PanopticSegment:
    """One segment of :func:`panoptic_inference`: ``id`` (1, 2, ...), its class, whether a thing, the query that
    started it and that query's class probability."""

    id: int
    category_id: int
    isthing: bool
    query: int
    score: float


def panoptic_queries(class_logits: torch.Tensor, object_threshold: float = OBJECT_THRESHOLD):
    """``(kept queries, their class probabilities, their labels)``: queries whose best class is not background and
    scores above ``object_threshold``, in query order."""
    scores, labels = class_logits.float().softmax(-1).max(-1)
    keep = (labels != class_logits.shape[-1] - 1) & (scores > object_threshold)
    kept = keep.nonzero().flatten()
    return kept, scores[kept], labels[kept]


def panoptic_segments(kept_masks: torch.Tensor, kept: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                      is_thing: Sequence[bool], *, overlap_threshold: float = OVERLAP_THRESHOLD
                      ) -> tuple[torch.Tensor, list[PanopticSegment]]:
    """The segment map of the kept queries (their mask logits ``[n, H, W]`` in :func:`panoptic_queries` order):
    ``int32 [H, W]`` ids (0 = none) and the segments."""
    h, w = kept_masks.shape[-2:]
    panoptic = torch.zeros((h, w), dtype=torch.int32, device=kept_masks.device)
    segments: list[PanopticSegment] = []
    if len(kept) == 0:
        return panoptic, segments
    prob_masks = kept_masks.float().sigmoid()
    ids = (scores.view(-1, 1, 1).to(prob_masks) * prob_masks).argmax(0)
    stuff: dict[int, int] = {}
    for k, q in enumerate(kept.tolist()):
        label = int(labels[k])
        thing = bool(is_thing[label])
        own = ids == k
        mask_area, original_area = int(own.sum()), int((prob_masks[k] >= 0.5).sum())
        seg = own & (prob_masks[k] >= 0.5)
        if mask_area == 0 or original_area == 0 or not bool(seg.any()):
            continue
        if mask_area / original_area < overlap_threshold:
            continue
        if not thing and label in stuff:
            panoptic[seg] = stuff[label]
            continue
        new_id = len(segments) + 1
        if not thing:
            stuff[label] = new_id
        panoptic[seg] = new_id
        segments.append(PanopticSegment(id=new_id, category_id=label, isthing=thing, query=q, score=float(scores[k])))
    return panoptic, segments


def panoptic_inference(class_logits: torch.Tensor, masks: torch.Tensor, is_thing: Sequence[bool], *,
                       object_threshold: float = OBJECT_THRESHOLD,
                       overlap_threshold: float = OVERLAP_THRESHOLD) -> tuple[torch.Tensor, list[PanopticSegment]]:
    """Official ``class_name_panoptic_inference`` on all queries' masks ``[Q, H, W]``."""
    kept, scores, labels = panoptic_queries(class_logits, object_threshold)
    return panoptic_segments(masks[kept.to(masks.device)], kept, scores, labels, is_thing,
                             overlap_threshold=overlap_threshold)


def region_scores(region_logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``region_logits [K, Q]`` and masks ``[Q, H, W]`` -> scores ``[Q, K]`` (official ``region_inference``)."""
    return (region_logits.float().sigmoid() * mask_scores(masks)[None]).transpose(0, 1)
