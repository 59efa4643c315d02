"""A deterministic detector for the synthetic videos of ``tests/video_synth.py``: each object is painted in a
colour of its class's palette, and ``PaletteShapeDetector`` boxes every connected region of each colour of a tag's
palette (score 0.9). Two objects of one class have two colours, so two crossing circles stay two boxes, as a good
detector would see them; the detector knows nothing of time or identity, so the IDs are the tracker's work."""
from __future__ import annotations

import time
from typing import Mapping, Optional, Sequence

import numpy as np

from openvocab.masks import encode_mask
from openvocab.registry import DETECTORS, MASK_HEADS
from openvocab.stages import Detector, MaskHead
from openvocab.structures import Detections, Regions

#: class -> the colours objects of that class are painted in (one colour per object on screen at once)
PALETTE: dict[str, list[tuple[int, int, int]]] = {
    "circle": [(225, 35, 35), (240, 160, 30)],
    "square": [(35, 190, 60)],
    "triangle": [(60, 80, 230)],
}


@DETECTORS.register_module()
class PaletteShapeDetector(Detector):
    """One box per connected region of each palette colour of the asked tags (area >= ``min_area`` pixels).

    Args:
        palette: class -> colours (default :data:`PALETTE`).
        tolerance: the largest per-channel difference of a pixel to its colour (video compression).
        delay: seconds slept per image (a slow model, for interruption tests).
        log: a file that gets one line per image, its width (which video the detector saw).
    """

    def __init__(self, *, palette: Optional[Mapping[str, Sequence[Sequence[int]]]] = None, tolerance: int = 45,
                 min_area: int = 12, delay: float = 0.0, log: Optional[str] = None) -> None:
        self.palette = {k: [tuple(c) for c in v] for k, v in (palette or PALETTE).items()}
        self.tolerance, self.min_area, self.delay, self.log = tolerance, min_area, delay, log

    def detect(self, images, tag_names, prepared=None):
        import cv2

        out = []
        for img, names in zip(images, tag_names):
            time.sleep(self.delay)
            if self.log:
                with open(self.log, "a") as f:
                    f.write(f"{img.shape[1]}\n")
            boxes, labels = [], []
            for name in names:
                for colour in self.palette.get(name, []):
                    diff = np.abs(img.astype(np.int16) - np.asarray(colour, np.int16)).max(axis=-1)
                    n, _, stats, _ = cv2.connectedComponentsWithStats((diff <= self.tolerance).astype(np.uint8), 8)
                    for k in range(1, n):
                        x, y, w, h, area = (int(v) for v in stats[k])
                        if area >= self.min_area:
                            boxes.append([x, y, x + w, y + h])
                            labels.append(name)
            out.append(Detections(boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                                  scores=np.full(len(boxes), 0.9, np.float32), labels=tuple(labels)))
        return out


@MASK_HEADS.register_module()
class PaletteMaskHead(MaskHead):
    """The mask of a box: the pixels inside it of the palette colour most present there."""

    def __init__(self, *, palette: Optional[Mapping[str, Sequence[Sequence[int]]]] = None, tolerance: int = 45) -> None:
        self.colours = [tuple(c) for v in (palette or PALETTE).values() for c in v]
        self.tolerance = tolerance
        self.image: Optional[np.ndarray] = None

    def set_image(self, image: np.ndarray) -> None:
        self.image = image

    def predict(self, *, boxes=None, points=None, point_labels=None) -> Regions:
        h, w = self.image.shape[:2]
        masks = []
        for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
            win = (slice(int(y1), int(np.ceil(y2))), slice(int(x1), int(np.ceil(x2))))
            inside = [np.abs(self.image[win].astype(np.int16) - np.asarray(c, np.int16)).max(-1) <= self.tolerance
                      for c in self.colours]
            full = np.zeros((h, w), bool)
            full[win] = max(inside, key=lambda m: int(m.sum()))
            masks.append(encode_mask(full))
        return Regions(masks=masks, mask_scores=np.ones(len(masks), np.float32))
