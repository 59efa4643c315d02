"""A stand-alone plugin package (not part of openvocab/tagging/grounding).

It shows how a researcher's own components plug in: register into ``openvocab.registry`` and
name the package in a config's ``custom_imports``. The components are deterministic toys
whose outputs the tests can predict exactly.
"""
from __future__ import annotations

from typing import Optional, Sequence

import os
import time

import numpy as np
from pycocotools import mask as mask_utils

from openvocab import hub
from grounding.prompt import PromptChunker
from openvocab.registry import DETECTORS, MASK_HEADS, TAGGERS
from openvocab.stages import Detector, MaskHead, Tagger
from openvocab.structures import Detections, Regions, Tag, Tags, TagSource


WEIGHTS = {"toy_weights": hub.RemoteFile("toy_tagger_weights.pth", hf_repo="toy-org/toy-tagger",
                                         description="toy tagger weights")}


@TAGGERS.register_module()
class BrightnessTagger(Tagger):
    """Tags 'bright' (non-boxable attribute) and 'box' by image brightness; 'dark' otherwise."""

    def __init__(self, *, threshold: float = 127.0, delay: float = 0.0,
                 checkpoint: Optional[str] = None, die_on_width: Optional[int] = None,
                 die_marker: Optional[str] = None) -> None:
        self.threshold = threshold
        self.delay = delay
        self.checkpoint = checkpoint
        self.die_on_width, self.die_marker = die_on_width, die_marker  # a worker that dies once, mid-batch
        self.device = None

    def setup(self, device: str = "cpu") -> None:
        if self.checkpoint is not None:  # resolved like a real model's weights
            hub.resolve(WEIGHTS[self.checkpoint])
        self.device = device

    def remote_files(self):
        return [WEIGHTS[self.checkpoint]] if self.checkpoint is not None else []

    def tag(self, images: Sequence[np.ndarray]) -> list[Tags]:
        out = []
        for img in images:
            if self.die_on_width == img.shape[1] and not os.path.exists(self.die_marker):
                open(self.die_marker, "w").close()
                os._exit(1)  # the process dies as a crash or an OOM kill would
            time.sleep(self.delay)
            m = float(img.mean())
            if m > self.threshold:
                out.append(Tags((Tag("bright", m / 255.0, TagSource.CLOSED_SET),
                                 Tag("box", 0.9, TagSource.CLOSED_SET))))
            else:
                out.append(Tags((Tag("dark", 1 - m / 255.0, TagSource.CLOSED_SET),)))
        return out


@DETECTORS.register_module()
class CentreBoxDetector(Detector):
    """One box per tag: the central half of the image, score 0.5 + 0.1 * tag index. Like a text-prompted
    model it runs long vocabularies in chunks (openvocab's shared PromptChunker, a 16-"token" limit)."""

    def __init__(self, *, fail_on_width: Optional[int] = None) -> None:
        self.fail_on_width = fail_on_width
        self.calls: list[list[str]] = []
        self.chunker = PromptChunker(count_tokens=lambda text: len(text.split()) + 2, max_tokens=16)

    def detect_text(self, images, texts):
        out = []
        for img, text in zip(images, texts):
            h, w = img.shape[:2]
            out.append(Detections(boxes=[[0, 0, w, h]], scores=[0.75], labels=(text,), phrases=(text,)))
        return out

    def detect(self, images, tag_names, prepared=None):
        out = []
        for img, names in zip(images, tag_names):
            if self.fail_on_width is not None and img.shape[1] == self.fail_on_width:
                raise RuntimeError("toy detector failure")
            h, w = img.shape[:2]
            chunks = self.chunker(names)
            self.calls.append([p.caption for p in chunks])
            labels = [label for p in chunks for label in p.labels]
            boxes = np.array([[w / 4, h / 4, 3 * w / 4, 3 * h / 4]] * len(labels), np.float32)
            scores = 0.5 + 0.1 * np.arange(len(labels), dtype=np.float32)
            out.append(Detections(boxes=boxes.reshape(-1, 4), scores=np.minimum(scores, 1.0),
                                  labels=tuple(labels)))
        return out


@MASK_HEADS.register_module()
class BoxMaskHead(MaskHead):
    """The mask of a box prompt is the box itself; caption 'a <w>x<h> box'."""

    def set_image(self, image: np.ndarray) -> None:
        self.shape = image.shape[:2]

    def predict(self, *, boxes=None, points=None, point_labels=None) -> Regions:
        h, w = self.shape
        masks, caps = [], []
        for x1, y1, x2, y2 in np.asarray(boxes):
            m = np.zeros((h, w), np.uint8, order="F")
            m[int(y1):int(y2), int(x1):int(x2)] = 1
            rle = mask_utils.encode(m)
            rle["counts"] = rle["counts"].decode()
            masks.append(rle)
            caps.append(f"a {int(x2 - x1)}x{int(y2 - y1)} box")
        return Regions(masks=masks, mask_scores=np.ones(len(masks), np.float32), captions=caps)
