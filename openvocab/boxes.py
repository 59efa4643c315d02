"""Box post-processing shared by every detector: clipping to the image and merging prompt chunks.

* :func:`clip_detections` is the one place boxes are clipped: the pipeline applies it to whatever
  a detector returns (a plugin never clips its own boxes); :func:`clip_instances` for a segmenter's.
* :func:`merge_detections` merges the boxes a detector found with several prompt chunks (or
  several text queries) of one image: per-tag NMS, then optional class-agnostic NMS, then the
  ``max_detections`` best; :func:`merge_instances` does the same with masks attached.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torchvision.ops import batched_nms, nms

from .structures import Detections, Instances


def _clip(dets: Detections, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Clipped boxes and the indices of those left with an area."""
    b = dets.boxes.copy()
    b[:, 0::2] = b[:, 0::2].clip(0, width)
    b[:, 1::2] = b[:, 1::2].clip(0, height)
    return b, np.nonzero((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))[0]


def clip_detections(dets: Detections, height: int, width: int) -> Detections:
    """Boxes clipped to ``[0, width] x [0, height]``; boxes left without area are dropped."""
    if len(dets) == 0:
        return dets
    b, keep = _clip(dets, height, width)
    if len(keep) == len(dets) and np.array_equal(b, dets.boxes):
        return dets
    return Detections(boxes=b[keep], scores=dets.scores[keep], labels=tuple(dets.labels[i] for i in keep),
                      phrases=tuple(dets.phrases[i] for i in keep))


def clip_instances(inst: Instances, height: int, width: int) -> Instances:
    """:func:`clip_detections` for boxes with masks (a dropped box drops its mask)."""
    if len(inst) == 0:
        return inst
    b, keep = _clip(inst.detections, height, width)
    if len(keep) == len(inst) and np.array_equal(b, inst.detections.boxes):
        return inst
    kept = inst.select(keep)
    return Instances(clip_detections(kept.detections, height, width), kept.regions)


def nms_indices(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, *, iou: Optional[float],
                agnostic_iou: Optional[float]) -> torch.Tensor:
    """Indices kept after per-label NMS (``iou``) then class-agnostic NMS (``agnostic_iou``), sorted by score
    (``None`` turns a step off)."""
    keep = torch.argsort(scores, descending=True, stable=True)
    if iou is not None and keep.numel():
        keep = batched_nms(boxes.float(), scores.float(), labels, iou)
    if agnostic_iou is not None and keep.numel():
        keep = keep[nms(boxes[keep].float(), scores[keep].float(), agnostic_iou)]
    return keep


def merge_detections(parts: Sequence[Detections], *, nms_iou: Optional[float] = 0.5,
                     agnostic_nms_iou: Optional[float] = None, max_detections: Optional[int] = None) -> Detections:
    """One image's detections from several chunks -> NMS'd, best first, at most ``max_detections``."""
    merged = Detections.concatenate(parts)
    if len(merged) == 0:
        return merged
    index = {n: k for k, n in enumerate(dict.fromkeys(merged.labels))}
    labels = torch.tensor([index[n] for n in merged.labels])
    keep = nms_indices(torch.from_numpy(merged.boxes), torch.from_numpy(merged.scores), labels,
                       iou=nms_iou, agnostic_iou=agnostic_nms_iou)
    if max_detections is not None:
        keep = keep[:max_detections]
    return merged.select(keep.numpy())


def merge_instances(parts: Sequence[Instances], *, nms_iou: Optional[float] = None,
                    agnostic_nms_iou: Optional[float] = None, max_detections: Optional[int] = None) -> Instances:
    """:func:`merge_detections` for boxes with masks: NMS on the boxes, each mask follows its box."""
    merged = Instances.concatenate(parts)
    if len(merged) == 0:
        return merged
    dets = merged.detections
    index = {n: k for k, n in enumerate(dict.fromkeys(dets.labels))}
    keep = nms_indices(torch.from_numpy(dets.boxes), torch.from_numpy(dets.scores),
                       torch.tensor([index[n] for n in dets.labels]), iou=nms_iou, agnostic_iou=agnostic_nms_iou)
    if max_detections is not None:
        keep = keep[:max_detections]
    return merged.select(keep.numpy())
