"""Class-agnostic region proposals for prototype matching: every object-like region of an image, with no class.

* :class:`MaskHeadProposer` (``kind='mask_head'``): the automatic mode of any mask head (any registered
  ``MASK_HEADS`` component: TAP, SAM, the transformers SAMs, PSALM). A grid of ``points_per_side`` x
  ``points_per_side`` foreground points prompts it, one point per prompt (the head's multimask choice picks the
  mask); masks scored under ``min_score``, smaller than ``min_area`` or larger than ``max_area`` of the image are
  dropped, and boxes overlapping a better one by more than ``nms_iou`` are removed. Gives boxes with masks.
* :class:`ObjectnessProposer` (``kind='objectness'``): OWLv2's objectness head: one box per patch with the
  probability that it holds an object; the ``top_k`` above ``min_objectness`` after NMS. Boxes only (a pipeline's
  mask head segments them).

The matcher builds its own mask head for proposals: the pipeline's runs in another step's thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from grounding.hf.loading import HubModel, check_dtype, check_model, check_positive, check_unit, load
from openvocab.masks import decode_mask, mask_box
from openvocab.registry import MASK_HEADS
from openvocab.stages import MaskHead


@dataclass(frozen=True)
class Proposals:
    """Regions of one image: ``boxes float32 [N, 4]`` xyxy pixels, ``scores [N]``, ``masks`` (``N`` ``bool [H, W]``,
    or ``None`` for boxes only)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    masks: Optional[list[np.ndarray]] = None

    def __len__(self) -> int:
        return len(self.boxes)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: Optional[float], top: int) -> np.ndarray:
    from torchvision.ops import nms

    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    order = torch.argsort(torch.from_numpy(scores), descending=True, stable=True)
    if iou is not None:
        order = nms(torch.from_numpy(boxes).float(), torch.from_numpy(scores).float(), iou)
    return order[:top].numpy()


class MaskHeadProposer:
    """The automatic mode of a mask head (module docstring)."""

    kind = "mask_head"
    gives_masks = True

    def __init__(self, *, mask_head: dict | MaskHead, points_per_side: int = 16, points_per_batch: int = 64,
                 min_score: float = 0.5, min_area: float = 0.0005, max_area: float = 0.95,
                 nms_iou: Optional[float] = 0.7, max_proposals: int = 200) -> None:
        if not isinstance(mask_head, (dict, MaskHead)):
            raise ValueError(f"mask_head must be a mask head config dict (type=...) or a MaskHead, got {mask_head!r}")
        for name, v in (("points_per_side", points_per_side), ("points_per_batch", points_per_batch),
                        ("max_proposals", max_proposals)):
            check_positive(name, v)
        for name, v in (("min_score", min_score), ("min_area", min_area), ("max_area", max_area)):
            check_unit(name, v)
        check_unit("nms_iou", nms_iou, optional=True)
        self.mask_head = MASK_HEADS.build(dict(mask_head)) if isinstance(mask_head, dict) else mask_head
        self.points_per_side, self.points_per_batch = points_per_side, points_per_batch
        self.min_score, self.min_area, self.max_area = float(min_score), float(min_area), float(max_area)
        self.nms_iou, self.max_proposals = nms_iou, max_proposals

    @property
    def stages(self) -> list[Any]:
        return [self.mask_head]

    def setup(self, device: str = "cpu") -> None:
        self.mask_head.setup(device)

    def grid(self, height: int, width: int) -> np.ndarray:
        """``float32 [n * n, 2]`` xy points at the centres of an ``n x n`` grid over the image."""
        n = self.points_per_side
        xs = (np.arange(n) + 0.5) / n * width
        ys = (np.arange(n) + 0.5) / n * height
        return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)

    def propose(self, image: np.ndarray) -> Proposals:
        h, w = image.shape[:2]
        points = self.grid(h, w)
        self.mask_head.set_image(image)
        boxes, scores, masks = [], [], []
        for s in range(0, len(points), self.points_per_batch):
            pts = points[s:s + self.points_per_batch]
            regions = self.mask_head.predict(points=pts[:, None, :], point_labels=np.ones((len(pts), 1), np.int64))
            for rle, score in zip(regions.masks, regions.mask_scores):
                mask = decode_mask(rle)
                area = int(mask.sum()) / mask.size
                if score < self.min_score or area < max(self.min_area, 1 / mask.size) or area > self.max_area:
                    continue
                boxes.append(mask_box(mask))
                scores.append(float(score))
                masks.append(mask)
        if not boxes:
            return Proposals(masks=[])
        boxes_a, scores_a = np.stack(boxes).astype(np.float32), np.asarray(scores, np.float32)
        keep = _nms(boxes_a, scores_a, self.nms_iou, self.max_proposals)
        return Proposals(boxes=boxes_a[keep], scores=scores_a[keep], masks=[masks[i] for i in keep])


class ObjectnessProposer(HubModel):
    """OWLv2's objectness head as a class-agnostic box proposer (module docstring)."""

    kind = "objectness"
    gives_masks = False
    what = "transformers OWLv2 (objectness)"

    def __init__(self, *, model: str = "google/owlv2-base-patch16-ensemble", revision: Optional[str] = None,
                 top_k: int = 100, min_objectness: float = 0.1, nms_iou: Optional[float] = 0.5,
                 dtype: str = "float32") -> None:
        check_model(model)
        check_positive("top_k", top_k)
        check_unit("min_objectness", min_objectness)
        check_unit("nms_iou", nms_iou, optional=True)
        self.model, self.revision, self.top_k, self.min_objectness = model, revision, top_k, float(min_objectness)
        self.nms_iou, self.dtype = nms_iou, check_dtype(dtype)
        self.net = self.processor = None
        self.device: Optional[str] = None

    @property
    def stages(self) -> list[Any]:
        return [self]

    def setup(self, device: str = "cpu") -> None:
        if self.net is not None and self.device == device:
            return
        loaded = load(self.model, auto_class="AutoModelForZeroShotObjectDetection", types={"owlv2": "OWLv2"},
                      device=device, dtype=self.dtype, revision=self.revision, description=self.what)
        self.net, self.processor, self.device = loaded.model, loaded.processor, device

    def propose(self, image: np.ndarray) -> Proposals:
        from transformers.image_transforms import center_to_corners_format

        if self.net is None:
            raise ValueError(f"{type(self).__name__}.setup(device) must be called first")
        h, w = image.shape[:2]
        pv = self.processor.image_processor(images=image, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            fmap = self.net.image_embedder(pixel_values=pv.to(device=self.device,
                                                              dtype=next(self.net.parameters()).dtype))[0]
            feats = fmap.reshape(fmap.shape[0], -1, fmap.shape[-1])
            objectness = torch.sigmoid(self.net.objectness_predictor(feats).float())[0].cpu().numpy()
            boxes = center_to_corners_format(self.net.box_predictor(feats, fmap).float())[0].cpu().numpy()
        boxes = (boxes * max(h, w)).astype(np.float32)  # OWLv2 pads the image to a square
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        ok = np.flatnonzero((objectness > self.min_objectness) & (boxes[:, 2] > boxes[:, 0])
                            & (boxes[:, 3] > boxes[:, 1]))
        keep = ok[_nms(boxes[ok], objectness[ok].astype(np.float32), self.nms_iou, self.top_k)]
        return Proposals(boxes=boxes[keep], scores=objectness[keep].astype(np.float32))


#: ``kind`` -> proposer class (a config picks one by ``kind``; nothing is imported by name)
PROPOSERS = {MaskHeadProposer.kind: MaskHeadProposer, ObjectnessProposer.kind: ObjectnessProposer}


def build_proposer(cfg: Any) -> Any:
    """A proposer from ``dict(kind='mask_head' | 'objectness', ...)`` (or one given ready)."""
    if isinstance(cfg, (MaskHeadProposer, ObjectnessProposer)):
        return cfg
    if not isinstance(cfg, dict) or cfg.get("kind") not in PROPOSERS:
        raise ValueError(f"proposer must be dict(kind=..., ...) with kind one of {', '.join(PROPOSERS)}; got {cfg!r}")
    options = {k: v for k, v in cfg.items() if k != "kind"}
    return PROPOSERS[cfg["kind"]](**options)
