"""Losses for fine-tuning: the tagger's asymmetric loss and the detector's set-prediction losses."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torchvision.ops import generalized_box_iou, sigmoid_focal_loss


def asymmetric_loss(logits: torch.Tensor, targets: torch.Tensor, *, gamma_neg: float = 7.0,
                    gamma_pos: float = 0.0, clip: float = 0.05, eps: float = 1e-8,
                    weight: torch.Tensor | None = None) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al. 2021) on multi-label logits, as RAM/RAM++ use it
    (``gamma_neg=7, gamma_pos=0, clip=0.05``). Summed over tags, averaged over the batch.

    Args:
        logits: ``[B, C]``; targets: ``[B, C]`` in {0, 1}; weight: optional ``[B, C]`` mask
            (0 = tag not annotated for that image: ignored, OpenImages style).
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    targets = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    p_neg = (1 - p + clip).clamp(max=1) if clip > 0 else 1 - p
    loss_pos = targets * torch.log(p.clamp(min=eps))
    loss_neg = (1 - targets) * torch.log(p_neg.clamp(min=eps))
    loss = loss_pos + loss_neg
    if gamma_neg > 0 or gamma_pos > 0:
        with torch.no_grad():
            pt = p * targets + p_neg * (1 - targets)
            gamma = gamma_pos * targets + gamma_neg * (1 - targets)
            focus = torch.pow(1 - pt, gamma)
        loss = loss * focus
    if weight is not None:
        loss = loss * weight
    return -loss.sum() / max(logits.shape[0], 1)


def box_cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


@dataclass(frozen=True)
class MatchCosts:
    """Hungarian matching weights (DINO / Grounding DINO defaults)."""

    cls: float = 2.0
    bbox: float = 5.0
    giou: float = 2.0
    alpha: float = 0.25
    gamma: float = 2.0


@torch.no_grad()
def hungarian_match(logits: torch.Tensor, boxes: torch.Tensor, positive_maps: list[torch.Tensor],
                    gt_boxes: list[torch.Tensor], costs: MatchCosts = MatchCosts()) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Match queries to ground-truth objects, per image.

    Args:
        logits: ``[B, Q, T]`` query-token logits; boxes: ``[B, Q, 4]`` normalised cxcywh.
        positive_maps: per image ``[G, T]``: each object's tag span over the text tokens (rows sum to 1).
        gt_boxes: per image ``[G, 4]`` normalised cxcywh.
    Returns: per image ``(query_idx, gt_idx)`` long tensors.
    """
    out = []
    for b in range(logits.shape[0]):
        g = gt_boxes[b]
        if len(g) == 0:
            out.append((torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)))
            continue
        prob = logits[b].float().sigmoid()
        neg = (1 - costs.alpha) * prob.pow(costs.gamma) * -(1 - prob + 1e-8).log()
        pos = costs.alpha * (1 - prob).pow(costs.gamma) * -(prob + 1e-8).log()
        pm = positive_maps[b].to(prob)
        c_cls = (pos - neg) @ (pm > 0).to(prob).T / (pm > 0).sum(-1).clamp(min=1)
        c_box = torch.cdist(boxes[b].float(), g.float(), p=1)
        c_giou = -generalized_box_iou(box_cxcywh_to_xyxy(boxes[b].float()), box_cxcywh_to_xyxy(g.float()))
        cost = costs.cls * c_cls + costs.bbox * c_box + costs.giou * c_giou
        qi, gi = linear_sum_assignment(cost.cpu().numpy())
        out.append((torch.as_tensor(qi, dtype=torch.long), torch.as_tensor(gi, dtype=torch.long)))
    return out


def set_prediction_losses(logits: torch.Tensor, boxes: torch.Tensor, text_mask: torch.Tensor,
                          positive_maps: list[torch.Tensor], gt_boxes: list[torch.Tensor], *,
                          costs: MatchCosts = MatchCosts(), w_cls: float = 1.0, w_bbox: float = 5.0,
                          w_giou: float = 2.0) -> dict[str, torch.Tensor]:
    """Grounding-DINO losses for one decoder layer (or the encoder proposals).

    Contrastive focal classification: each query's target over the text tokens is the token span
    of its matched tag (0 elsewhere, 0 for unmatched queries); only valid text tokens count.
    Box losses: L1 and GIoU on matched queries. All normalised by the number of objects.
    """
    matches = hungarian_match(logits, boxes, positive_maps, gt_boxes, costs)
    target = torch.zeros_like(logits, dtype=torch.float32)
    src_boxes, tgt_boxes = [], []
    for b, (qi, gi) in enumerate(matches):
        if len(qi):
            target[b, qi] = (positive_maps[b][gi] > 0).to(target)
            src_boxes.append(boxes[b, qi])
            tgt_boxes.append(gt_boxes[b][gi])
    num = max(sum(len(g) for g in gt_boxes), 1)
    valid = text_mask[:, None, :].expand_as(logits)
    cls = sigmoid_focal_loss(logits.float()[valid], target[valid], alpha=costs.alpha, gamma=costs.gamma,
                             reduction="sum") / num
    if src_boxes:
        sb, tb = torch.cat(src_boxes).float(), torch.cat(tgt_boxes).float()
        l1 = F.l1_loss(sb, tb, reduction="sum") / num
        giou = (1 - torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(sb), box_cxcywh_to_xyxy(tb)))).sum() / num
    else:
        l1 = giou = boxes.sum() * 0
    return {"loss_cls": w_cls * cls, "loss_bbox": w_bbox * l1, "loss_giou": w_giou * giou}


def deep_supervision_losses(layers: "list[tuple[torch.Tensor, torch.Tensor]]", text_mask: torch.Tensor,
                            positive_maps: list[torch.Tensor], gt_boxes: list[torch.Tensor], *,
                            encoder: "tuple[torch.Tensor, torch.Tensor] | None" = None,
                            costs: MatchCosts = MatchCosts(), w_cls: float = 1.0, w_bbox: float = 5.0,
                            w_giou: float = 2.0) -> dict[str, torch.Tensor]:
    """:func:`set_prediction_losses` for every decoder layer and the encoder proposals (DINO two-stage).

    Args:
        layers: per decoder layer ``(logits [B, Q, T], boxes [B, Q, 4])``, first to last.
        encoder: the encoder's selected proposals ``(logits, boxes)``, or ``None``.
    Returns: the last layer as ``loss_cls``/``loss_bbox``/``loss_giou``, earlier layers as
        ``d{i}.loss_*`` and the encoder as ``enc.loss_*``; each one matched on its own.
    """
    if not layers:
        raise ValueError("deep_supervision_losses needs at least one decoder layer")
    stages = [(f"d{i}." if i < len(layers) - 1 else "", lg, bx) for i, (lg, bx) in enumerate(layers)]
    if encoder is not None:
        stages.append(("enc.", *encoder))
    out: dict[str, torch.Tensor] = {}
    for prefix, lg, bx in stages:
        part = set_prediction_losses(lg, bx, text_mask, positive_maps, gt_boxes, costs=costs, w_cls=w_cls,
                                     w_bbox=w_bbox, w_giou=w_giou)
        out.update({prefix + k: v for k, v in part.items()})
    return out
