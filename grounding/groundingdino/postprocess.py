"""Post-processing: thresholds, char-span -> token-span mapping, per-tag label assignment, NMS, rescaling."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torchvision.ops import batched_nms, nms


def cxcywh_to_xyxy_pixels(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[N,4] normalised (cx,cy,w,h) -> [N,4] absolute (x0,y0,x1,y1) pixels of an image of height x width."""
    b = boxes * torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


def char_span_to_token_span(offsets: Sequence[tuple[int, int]], start: int, end: int) -> list[int]:
    """Token indices whose char offsets overlap [start, end) (special tokens have empty offsets)."""
    if end <= start:
        raise ValueError(f"empty char span ({start}, {end})")
    return [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > start]


@dataclass
class ThresholdResult:
    """Kept queries in query order: indices [K], scores [K] (max probability over all 256 slots),
    boxes [K,4] normalised cxcywh, probs [K,256]."""

    indices: torch.Tensor
    scores: torch.Tensor
    boxes: torch.Tensor
    probs: torch.Tensor


def box_threshold(logits: torch.Tensor, boxes: torch.Tensor, threshold: float) -> ThresholdResult:
    """Official ``predict`` filtering for one image: logits [Q,256], boxes [Q,4]."""
    probs = logits.float().sigmoid()
    scores = probs.max(-1)[0]
    keep = torch.nonzero(scores > threshold).flatten()
    return ThresholdResult(indices=keep, scores=scores[keep], boxes=boxes[keep].float(), probs=probs[keep])


def tag_scores(probs: torch.Tensor, token_spans: Sequence[Sequence[int]]) -> torch.Tensor:
    """[K,256] probabilities -> [K, n_tags]: max probability over each tag's tokens."""
    if len(token_spans) == 0:
        return probs.new_zeros((probs.shape[0], 0))
    cols = []
    for span in token_spans:
        if len(span) == 0:
            cols.append(probs.new_full((probs.shape[0],), -1.0))
        else:
            cols.append(probs[:, list(span)].max(-1)[0])
    return torch.stack(cols, -1)


def phrase_spans(probs_row: torch.Tensor, offsets: Sequence[tuple[int, int]], caption: str,
                 text_threshold: float) -> str:
    """Free-text phrase of one query: the tokens above ``text_threshold`` (position 0 off, as official),
    reported as caption text. Consecutive selected tokens (and word pieces of one word) are joined into
    one character span; separate spans are joined with a space; '.' separators are dropped."""
    n = len(offsets)
    sel = (probs_row[:n] > text_threshold).tolist()
    sel[0] = False
    spans: list[list[int]] = []
    for i, on in enumerate(sel):
        s, e = offsets[i]
        if not on or e <= s or caption[s:e] == ".":
            continue
        if spans and (spans[-1][1] == s or (i > 0 and sel[i - 1] and caption[spans[-1][1]:s].strip() == "")):
            spans[-1][1] = e
        else:
            spans.append([s, e])
    return " ".join(caption[s:e] for s, e in spans)


def nms_detections(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, *, iou: float | None,
                   agnostic_iou: float | None) -> torch.Tensor:
    """Indices kept after per-label NMS (``iou``) then class-agnostic NMS (``agnostic_iou``), sorted by score."""
    keep = torch.argsort(scores, descending=True)
    if iou is not None and keep.numel():
        k = batched_nms(boxes.float(), scores.float(), labels, iou)
        keep = k
    if agnostic_iou is not None and keep.numel():
        k = nms(boxes[keep].float(), scores[keep].float(), agnostic_iou)
        keep = keep[k]
    return keep
