"""What a batch of images carries between the job's steps: loader-side preparation, and the located boxes
that the mask stage finishes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .examples import ExampleSet
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
    captioner: Any = None
    exemplar_detector: Any = None


@dataclass(frozen=True)
class BatchState:
    """A batch on its way through the pipeline's steps (:attr:`openvocab.pipeline.Pipeline.STEPS`), lists aligned
    per image. Each step returns a new state with its fields filled in.

    Attributes:
        images / infos / prepared: the batch as given to :meth:`~openvocab.pipeline.Pipeline.start`.
        vocabulary: this batch's user classes instead of the tagger and the pipeline's vocabulary (the Python
            API's per-call ``vocabulary``; ``None``: the pipeline's own).
        examples: this batch's labelled examples instead of the pipeline's (the Python API's per-call ``examples``;
            ``None``: the pipeline's own).
        tags: each image's tags, boxable marked (set by ``tag``; ``caption`` may add the tags its parser finds in
            the caption).
        captions: each image's caption (set by ``caption``; ``None`` without a captioner).
        detections: boxes (xyxy, original pixels, clipped) of the detector or segmenter (set by ``locate``).
        regions: the segmenter's masks per image (set by ``locate``); ``None`` when the mask head makes them
            in ``finish``.
        example_regions: label by example, with a mask head: per image, the exemplar stage's own masks of the
            image's last boxes (its boxes), kept over the mask head's in ``finish`` (``None``: none).
    """

    images: list[np.ndarray]
    infos: list[ImageInfo]
    prepared: Optional[list[PreparedImage]] = None
    vocabulary: Optional[tuple[str, ...]] = None
    examples: Optional[ExampleSet] = None
    tags: Optional[list[Tags]] = None
    captions: Optional[list[Optional[str]]] = None
    detections: Optional[list[Detections]] = None
    regions: Optional[list[Optional[Regions]]] = None
    example_regions: Optional[list[Optional[Regions]]] = None

    def __len__(self) -> int:
        return len(self.images)

    def split(self) -> list["BatchState"]:
        """One state per image (to retry a batch a step failed on, image by image)."""
        def pick(values, i):
            return None if values is None else [values[i]]

        return [BatchState(images=[self.images[i]], infos=[self.infos[i]], prepared=pick(self.prepared, i),
                           vocabulary=self.vocabulary, examples=self.examples, tags=pick(self.tags, i),
                           captions=pick(self.captions, i), detections=pick(self.detections, i),
                           regions=pick(self.regions, i), example_regions=pick(self.example_regions, i))
                for i in range(len(self))]
