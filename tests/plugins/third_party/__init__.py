"""A researcher's own package, outside openvocab/tagging/grounding, with nothing but the stage interfaces.

``StripeDetector`` is the whole of a detector plugin: a class with ``setup`` and ``detect``, speaking in tag
names (no token counting, no prompt text, no clipping). ``CornerSegmenter`` and ``TopHalfSegmenter`` are
toy segmenters (a segmenter in place of detector + mask head, and a stuff segmenter) whose outputs the
tests can predict exactly. ``GuidedCaptioner`` captions an image from the tags it is given (a tag-guided
captioner, as Tag2Text is), so a test can tell which tags reached it.
"""
from __future__ import annotations

import numpy as np

from openvocab.masks import encode_mask
from openvocab.registry import CAPTIONERS, DETECTORS, SEGMENTERS
from openvocab.stages import Captioner, Detector, Segmenter
from openvocab.structures import Detections, Instances, Regions


@DETECTORS.register_module()
class StripeDetector(Detector):
    """The first ``max_tags`` tags, in order, each boxed as a horizontal stripe of the image's lower half that
    runs 10 pixels past both sides (the pipeline clips it); score ``0.9 - 0.1 * k``."""

    def __init__(self, *, max_tags: int = 2) -> None:
        self.max_tags = max_tags
        self.ready = False

    def setup(self, device: str = "cpu") -> None:
        self.ready = True

    def detect(self, images, tag_names, prepared=None):
        out = []
        for image, names in zip(images, tag_names):
            h, w = image.shape[:2]
            names = list(names)[: self.max_tags]
            k = np.arange(len(names), dtype=np.float32)
            boxes = np.stack([np.full_like(k, -10), h / 2 + k, np.full_like(k, w + 10), h / 2 + k + 20], 1)
            out.append(Detections(boxes=boxes.reshape(-1, 4), scores=0.9 - 0.1 * k, labels=tuple(names)))
        return out


def _instance(mask: np.ndarray, box, label: str, score: float) -> Instances:
    return Instances(Detections(boxes=[box], scores=[score], labels=(label,)),
                     Regions(masks=(encode_mask(mask),), mask_scores=[score]))


@SEGMENTERS.register_module()
class CornerSegmenter(Segmenter):
    """Per tag k: the mask of the top-left (10 + k) x (10 + k) square, its box reaching 5 pixels outside the image."""

    def segment(self, images, tag_names, prepared=None):
        out = []
        for image, names in zip(images, tag_names):
            parts = []
            for k, name in enumerate(names):
                mask = np.zeros(image.shape[:2], bool)
                mask[: 10 + k, : 10 + k] = True
                parts.append(_instance(mask, [-5, -5, 10 + k, 10 + k], name, 0.5))
            out.append(Instances.concatenate(parts))
        return out


@SEGMENTERS.register_module()
class TopHalfSegmenter(Segmenter):
    """Every tag: the top half of the image, score 0.7."""

    def segment(self, images, tag_names, prepared=None):
        out = []
        for image, names in zip(images, tag_names):
            h, w = image.shape[:2]
            mask = np.zeros((h, w), bool)
            mask[: h // 2] = True
            out.append(Instances.concatenate([_instance(mask, [0, 0, w, h // 2], n, 0.7) for n in names]))
        return out


@CAPTIONERS.register_module()
class GuidedCaptioner(Captioner):
    """``"a dog by <tags joined by 'and'> in a <bright|dark> place"`` from the tags it is given (its own tag when
    given none: ``thing``); ``calls`` records the tags of every call."""

    def __init__(self) -> None:
        self.calls: list = []

    def caption(self, images, tags=None, prepared=None):
        self.calls.append(None if tags is None else [list(t) for t in tags])
        out = []
        for i, image in enumerate(images):
            names = list(tags[i]) if tags is not None and tags[i] else ["thing"]
            light = "bright" if float(image.mean()) > 127 else "dark"
            out.append(f"a dog by {' and '.join(names)} in a {light} place")
        return out
