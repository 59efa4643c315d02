"""What the ``transformers`` detector families share (:class:`DetectorFamily`): the stage's options, the image
processor run on one image, and grouping a batch by tag list. Each family (:mod:`.caption`, :mod:`.owl`,
:mod:`.omdet`) subclasses it; :mod:`.detector` picks one by the checkpoint's model type."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from openvocab.structures import Detections

from .loading import Loaded, image_size


@dataclass(frozen=True)
class DetectorOptions:
    """What every family needs from the stage's configuration (see :class:`HFDetector`)."""

    box_threshold: float
    text_threshold: float
    nms_iou: Optional[float]
    text_template: str
    max_classes_per_forward: Optional[int]
    prompt_builder: Optional[dict]


class DetectorFamily(abc.ABC):
    """How one model family turns images and tag names into boxes.

    ``prepare`` is the image processor on one image (loader workers run it); ``detect`` returns, per image,
    the :class:`Detections` of each chunk its tags were run in (labels are the tag names as given).
    """

    def __init__(self, loaded: Loaded, options: DetectorOptions) -> None:
        self.model, self.processor, self.options = loaded.model, loaded.processor, options
        self.tokenizer = loaded.processor.tokenizer
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """``pixel_values [3, h, w]`` of one image, as the model's image processor makes them."""
        image_size(image)
        return self.processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def pixels(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack(list(tensors)).to(device=self.device, dtype=self.dtype)

    @abc.abstractmethod
    def detect(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
               prepared: Sequence[torch.Tensor]) -> list[list[Detections]]:
        ...


def same_tags(tag_names: Sequence[Sequence[str]]) -> dict[tuple[str, ...], list[int]]:
    """The images of a batch grouped by their tag list (class-list models run one text batch per group)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, names in enumerate(tag_names):
        groups.setdefault(tuple(names), []).append(i)
    return groups
