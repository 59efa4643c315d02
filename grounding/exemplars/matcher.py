"""``PrototypeMatcher``: label by example with any mask head: class-agnostic region proposals embedded by a vision
encoder and assigned to the nearest example prototype (:mod:`.prototypes`).

Per image: the proposer (:mod:`.proposals`: a mask head's automatic mode, or OWLv2's objectness) gives regions;
the encoder (:mod:`.encoder`: CLIP / DINOv2 through transformers) embeds each region (its box with some context,
the background outside its mask set to the mean colour); each region goes to the most similar class prototype when
the similarity reaches that class's threshold, calibrated from the examples by leave-one-out (reported in the job's
log). The examples are embedded the same way (their boxes and masks on their reference images). Matches are
deduplicated per class by box NMS (``nms_iou``); a proposal's mask is its instance's mask.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from grounding.hf.loading import check_positive, check_unit
from openvocab.boxes import nms_indices
from openvocab.examples import ExampleMatches, ExampleSet
from openvocab.masks import encode_mask
from openvocab.registry import EXEMPLAR_DETECTORS
from openvocab.stages import ExemplarDetector
from openvocab.structures import Detections, Regions

from .common import PerExampleSet
from .encoder import HFRegionEncoder
from .proposals import build_proposer
from .prototypes import PrototypeIndex


@EXEMPLAR_DETECTORS.register_module()
class PrototypeMatcher(ExemplarDetector):
    """Region proposals + a vision encoder + example prototypes.

    Args:
        encoder: ``HFRegionEncoder`` keyword arguments (``dict(model='facebook/dinov2-small')``), or an object with
            ``setup(device)`` and ``embed(image, boxes, masks) -> [N, D]``.
        proposer: ``dict(kind='mask_head', mask_head=dict(type=...), points_per_side=...)`` or
            ``dict(kind='objectness', model=...)`` (:mod:`.proposals`), or a proposer object.
        threshold: one fixed cosine threshold in [-1, 1] for every class (``None``: calibrated per class).
        default_threshold: the threshold of a class with a single example.
        nms_iou: per-class NMS of the matches (``None`` = off).
        max_detections: matches kept per image, best first.
    """

    def __init__(self, *, encoder: Any = None, proposer: Any = None, threshold: Optional[float] = None,
                 default_threshold: float = 0.7, nms_iou: Optional[float] = 0.5, max_detections: int = 100) -> None:
        encoder = dict(model="facebook/dinov2-small") if encoder is None else encoder
        if proposer is None:
            proposer = dict(kind="mask_head", mask_head=dict(type="HFSamMaskHead", model="facebook/sam-vit-huge"))
        for name, v in (("threshold", threshold), ("default_threshold", default_threshold)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not -1.0 <= v <= 1.0):
                raise ValueError(f"{name} must be a cosine similarity in [-1, 1] (got {v!r})")
        check_unit("nms_iou", nms_iou, optional=True)
        check_positive("max_detections", max_detections)
        self.encoder = HFRegionEncoder(**dict(encoder)) if isinstance(encoder, dict) else encoder
        if not (hasattr(self.encoder, "embed") and hasattr(self.encoder, "setup")):
            raise ValueError("encoder must be HFRegionEncoder options (a dict) or an object with setup() and embed()")
        self.proposer = build_proposer(dict(proposer) if isinstance(proposer, dict) else proposer)
        self.threshold = None if threshold is None else float(threshold)
        self.default_threshold, self.nms_iou, self.max_detections = float(default_threshold), nms_iou, max_detections
        self._index = PerExampleSet(self._make_index)

    @property
    def gives_masks(self) -> bool:  # type: ignore[override]
        return bool(self.proposer.gives_masks)

    def _parts(self) -> list[Any]:
        return [self.encoder, *self.proposer.stages]

    def required_files(self) -> list[str]:
        return [f for p in self._parts() if hasattr(p, "required_files") for f in p.required_files()]

    def remote_files(self) -> list:
        return [f for p in self._parts() if hasattr(p, "remote_files") for f in p.remote_files()]

    def remote_repos(self) -> list:
        return [r for p in self._parts() if hasattr(p, "remote_repos") for r in p.remote_repos()]

    def setup(self, device: str = "cpu") -> None:
        self.encoder.setup(device)
        self.proposer.setup(device)

    def _make_index(self, examples: ExampleSet) -> PrototypeIndex:
        by_image: dict[str, list[int]] = {}
        for i, e in enumerate(examples):
            by_image.setdefault(e.image_id, []).append(i)
        rows: list[Optional[np.ndarray]] = [None] * len(examples)
        for idx in by_image.values():  # each reference image's examples embedded together
            first = examples.examples[idx[0]]
            emb = self.encoder.embed(first.image, np.stack([examples.examples[i].box for i in idx]),
                                     [examples.examples[i].mask for i in idx])
            for i, row in zip(idx, emb):
                rows[i] = row
        names = list(examples.classes)
        return PrototypeIndex(embeddings=np.stack(rows), classes=names,
                              labels=[names.index(e.class_name) for e in examples],
                              positive=[e.positive for e in examples], threshold=self.threshold,
                              default_threshold=self.default_threshold)

    def index(self, examples: ExampleSet) -> PrototypeIndex:
        """The prototypes and thresholds of ``examples`` (computed once per set)."""
        return self._index.get(examples)

    def prepare_examples(self, examples: ExampleSet) -> list[str]:
        return [f"{type(self).__name__} thresholds (cosine): " + "; ".join(self.index(examples).report())]

    def detect_examples(self, images: Sequence[np.ndarray], examples: ExampleSet,
                        prepared: Optional[Sequence[Any]] = None) -> list[ExampleMatches]:
        index = self.index(examples)
        return [self._match(image, index) for image in images]

    def _match(self, image: np.ndarray, index: PrototypeIndex) -> ExampleMatches:
        props = self.proposer.propose(image)
        if len(props) == 0:
            return ExampleMatches(regions=Regions() if self.gives_masks else None)
        cls, score = index.assign(self.encoder.embed(image, props.boxes, props.masks))
        keep = np.flatnonzero(cls >= 0)
        order = nms_indices(torch.from_numpy(props.boxes[keep]), torch.from_numpy(score[keep]),
                            torch.from_numpy(cls[keep]), iou=self.nms_iou, agnostic_iou=None)
        keep = keep[order[:self.max_detections].numpy()]
        dets = Detections(boxes=props.boxes[keep], scores=score[keep], labels=tuple(index.classes[c] for c in cls[keep]))
        if props.masks is None:
            return ExampleMatches(dets)
        masks = tuple(encode_mask(props.masks[i]) for i in keep)
        return ExampleMatches(dets, Regions(masks=masks, mask_scores=props.scores[keep]))
