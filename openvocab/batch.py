"""What a batch of images carries between the job's steps: loader-side preparation, and the located boxes
that the mask stage finishes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .structures import Detections, ImageInfo, Regions, Tags


@dataclass(frozen=True)
class PreparedImage:
    """What the job's loader workers computed for one image: each stage's :meth:`~openvocab.stages.Stage.prepare`
    output (``None`` for a stage that preprocesses itself or is absent)."""

    tagger: Any = None
    detector: Any = None
    mask_head: Any = None
    segmenter: Any = None
    stuff_segmenter: Any = None


@dataclass
class LocatedBatch:
    """A batch between :meth:`Pipeline.locate` and :meth:`Pipeline.finish`, lists aligned per image.

    Attributes:
        images / infos / prepared: the batch as given to ``locate``.
        tags: each image's tags (boxable marked).
        detections: boxes (xyxy, original pixels, clipped) of the detector or segmenter.
        regions: the segmenter's masks per image; ``None`` when the mask head makes them in ``finish``.
    """

    images: list[np.ndarray]
    infos: list[ImageInfo]
    prepared: Optional[list[PreparedImage]]
    tags: list[Tags]
    detections: list[Detections]
    regions: Optional[list[Optional[Regions]]] = None

    def __len__(self) -> int:
        return len(self.images)

    def split(self) -> list["LocatedBatch"]:
        """One batch per image (to retry a batch the mask stage failed on image by image)."""
        return [LocatedBatch(images=[self.images[i]], infos=[self.infos[i]],
                             prepared=None if self.prepared is None else [self.prepared[i]], tags=[self.tags[i]],
                             detections=[self.detections[i]],
                             regions=None if self.regions is None else [self.regions[i]]) for i in range(len(self))]
