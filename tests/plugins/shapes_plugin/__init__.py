"""Oracle stages for the synthetic shapes of :mod:`openvocab.training.synthetic` drawn with
``class_colours=True`` (class ``k`` in colour ``k``): real boxes and masks found by colour, so that the
outputs handed to the downstream tools (Ultralytics, labelme, Datumaro, pycocotools) hold true objects.

``ColourShapeDetector`` boxes every connected region of a tag's colour; ``ColourMaskHead`` masks the
pixels of the box's dominant class colour inside the box. Only the first three classes (red, green,
blue) are told apart from every background the generator paints.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from openvocab.masks import encode_mask
from openvocab.registry import DETECTORS, MASK_HEADS
from openvocab.stages import Detector, MaskHead
from openvocab.structures import Detections, Regions
from openvocab.training.synthetic import COLOURS, SHAPES


def _colour_mask(image: np.ndarray, rgb, tolerance: int) -> np.ndarray:
    return np.abs(image.astype(np.int16) - np.asarray(rgb, np.int16)).max(axis=-1) <= tolerance


@DETECTORS.register_module()
class ColourShapeDetector(Detector):
    """One box per connected region of a class's colour (area >= ``min_area`` pixels), score 0.9."""

    def __init__(self, *, classes: Sequence[str] = SHAPES[:3], tolerance: int = 30, min_area: int = 20) -> None:
        self.colours = {c: COLOURS[list(COLOURS)[k]] for k, c in enumerate(classes)}
        self.tolerance, self.min_area = tolerance, min_area

    def detect(self, images, tag_names, prepared=None):
        import cv2

        out = []
        for img, names in zip(images, tag_names):
            boxes, labels = [], []
            for name in names:
                if name not in self.colours:
                    continue
                m = _colour_mask(img, self.colours[name], self.tolerance).astype(np.uint8)
                n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
                for k in range(1, n):
                    x, y, w, h, area = (int(v) for v in stats[k])
                    if area >= self.min_area:
                        boxes.append([x, y, x + w, y + h])
                        labels.append(name)
            out.append(Detections(boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                                  scores=np.full(len(boxes), 0.9, np.float32), labels=tuple(labels)))
        return out


@MASK_HEADS.register_module()
class ColourMaskHead(MaskHead):
    """The mask of a box: the pixels of the class colour most present inside it."""

    def __init__(self, *, classes: Sequence[str] = SHAPES[:3], tolerance: int = 30) -> None:
        self.colours = [COLOURS[list(COLOURS)[k]] for k in range(len(classes))]
        self.tolerance = tolerance
        self.image: Optional[np.ndarray] = None

    def set_image(self, image: np.ndarray) -> None:
        self.image = image

    def predict(self, *, boxes=None, points=None, point_labels=None) -> Regions:
        h, w = self.image.shape[:2]
        masks = []
        for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
            win = (slice(int(y1), int(np.ceil(y2))), slice(int(x1), int(np.ceil(x2))))
            inside = [_colour_mask(self.image[win], c, self.tolerance) for c in self.colours]
            best = max(inside, key=lambda m: int(m.sum()))
            full = np.zeros((h, w), bool)
            full[win] = best
            masks.append(encode_mask(full))
        return Regions(masks=masks, mask_scores=np.ones(len(masks), np.float32))
