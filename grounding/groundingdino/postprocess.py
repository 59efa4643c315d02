"""Post-processing: thresholds, char-span -> token-span mapping, per-tag label assignment, rescaling (NMS and
clipping are shared by every detector: :mod:`openvocab.boxes`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch


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
    """[K,256] probabilities -> [K, n_tags]: max probability over each tag's tokens (-1 for an empty span)."""
    if len(token_spans) == 0:
        return probs.new_zeros((probs.shape[0], 0))
    member = torch.zeros((len(token_spans), probs.shape[-1]), dtype=torch.bool, device=probs.device)
    for t, span in enumerate(token_spans):
        member[t, list(span)] = True
    return probs[:, None, :].masked_fill(~member[None], -1.0).amax(-1)


def best_tags(probs: torch.Tensor, token_spans: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Label of each kept query: ``(score [K], tag index [K])`` of the tag whose token span holds the highest
    probability (max over the span's tokens, so word pieces of one tag count as that tag; ties go to the
    earlier tag). Tags are whole prompt spans, never phrases decoded back from word pieces."""
    ts = tag_scores(probs, token_spans)
    if ts.shape[1] == 0:
        raise ValueError("a prompt without tags cannot label boxes")
    return ts.max(-1)


def phrase_spans(probs_row: torch.Tensor, offsets: Sequence[tuple[int, int]], caption: str,
                 text_threshold: float, word_ids: Optional[Sequence[Optional[int]]] = None) -> str:
    """Free-text phrase of one query, as caption text: the tokens above ``text_threshold`` (position 0 off, as
    the official ``predict``), each standing for the whole word it is a piece of (``word_ids``; "cross ##ing"
    with only "##ing" selected gives "crossing", never "##ing"). Selected words with only whitespace between
    them form one span; spans are joined with a space; '.' separators and special tokens are dropped."""
    n = len(offsets)
    sel = (probs_row[:n] > text_threshold).tolist()
    sel[0] = False
    words: dict = {}  # word -> [start, end, selected], in caption order
    for i, (s, e) in enumerate(offsets):
        if e <= s:
            continue
        key = word_ids[i] if word_ids is not None and word_ids[i] is not None else ("token", i)
        w = words.setdefault(key, [s, e, False])
        w[0], w[1], w[2] = min(w[0], s), max(w[1], e), w[2] or sel[i]
    spans: list[list[int]] = []
    for s, e, on in words.values():
        if not on or caption[s:e] == ".":
            continue
        if spans and caption[spans[-1][1]:s].strip() == "":
            spans[-1][1] = e
        else:
            spans.append([s, e])
    return " ".join(caption[s:e] for s, e in spans)
