"""``HFDetector``: the open-vocabulary detectors of ``transformers`` as one registered detector stage.

The model family comes from the checkpoint's ``config.json`` (``model_type``):

* ``grounding-dino``, ``mm-grounding-dino`` (MM-Grounding-DINO and LLMDet weights): caption models; tags
  become ``"a . b . c ."`` captions chunked under the text limit (:class:`grounding.prompt.PromptChunker`),
  each box labelled with the tag whose tokens score highest and scored with that tag's probability, as the
  native :class:`~grounding.groundingdino.detector.GroundingDINODetector` (:mod:`.caption`);
* ``owlv2``, ``owlvit``: one text query per tag, every box scored against every query (:mod:`.owl`);
* ``omdet-turbo``: a class list and a task prompt, chunked so the task prompt fits (:mod:`.omdet`).

The boxes of all chunks are merged with :func:`openvocab.boxes.merge_detections` (per-tag NMS, optional
class-agnostic NMS, ``max_detections``), as the native detector merges its chunks.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from openvocab.boxes import merge_detections
from openvocab.registry import DETECTORS
from openvocab.stages import Detector
from openvocab.structures import Detections

from .caption import CaptionFamily
from .family import DetectorFamily, DetectorOptions
from .loading import (HubModel, check_backend, check_dtype, check_model, check_positive, check_template, check_unit,
                      load)
from .omdet import OmDetFamily
from .owl import OwlFamily


#: ``model_type`` -> the family that runs it
FAMILIES: dict[str, type[DetectorFamily]] = {"grounding-dino": CaptionFamily, "mm-grounding-dino": CaptionFamily,
                                             "owlv2": OwlFamily, "owlvit": OwlFamily, "omdet-turbo": OmDetFamily}


#: supported ``model_type`` -> family, for messages
MODEL_TYPES = {"grounding-dino": "Grounding DINO", "mm-grounding-dino": "MM-Grounding-DINO / LLMDet",
               "owlv2": "OWLv2", "owlvit": "OWL-ViT", "omdet-turbo": "OmDet-Turbo"}


@DETECTORS.register_module()
class HFDetector(HubModel, Detector):
    """A ``transformers`` zero-shot detector (family by the checkpoint's model type; see the module docstring).

    Args:
        model: Hugging Face hub id (e.g. ``"openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det"``) or a
            local folder with ``config.json``, weights and processor files; resolved in ``setup()`` like every
            checkpoint (``--checkpoint-dir``, the HF cache, ``HF_HUB_OFFLINE``).
        revision: a hub revision (branch, tag or commit) to pin.
        box_threshold: minimum box score (caption models: the box's best token probability, as the official
            ``predict``; OWL: its best query's probability; OmDet: its class probability).
        text_threshold: caption models: the chosen tag's probability must exceed it.
        nms_iou: per-tag NMS IoU over all chunks of an image (``None`` = off); OmDet's own per-class NMS in its
            post-processing uses it too. agnostic_nms_iou: class-agnostic NMS after it (``None`` = off).
        max_detections: boxes kept per image, best first.
        text_template: class-list models: the query text of a tag (``"a photo of a {}"``); caption models use
            the tag names themselves.
        max_classes_per_forward: class-list models: at most this many tags per forward (``None``: all; OmDet's
            chunks are also cut so that its task prompt fits its text encoder).
        prompt_builder: caption models: how tag names become captions (``TagPromptBuilder`` config).
        processor_backend: the image processor's backend, ``"pil"`` or ``"torchvision"`` (``None``:
            transformers' default). ``"pil"`` resizes exactly as the official Grounding DINO code.
        dtype: the weights' dtype, ``"float32"``, ``"bfloat16"`` or ``"float16"``.

    Boxes are in original-image pixels and not clipped (the pipeline clips every detector's boxes).
    """

    what = "transformers detector"

    def __init__(self, *, model: str, revision: Optional[str] = None, box_threshold: float = 0.3,
                 text_threshold: float = 0.25, nms_iou: Optional[float] = 0.5,
                 agnostic_nms_iou: Optional[float] = None, max_detections: int = 100, text_template: str = "{}",
                 max_classes_per_forward: Optional[int] = None, prompt_builder: Optional[dict] = None,
                 processor_backend: Optional[str] = None, dtype: str = "float32") -> None:
        check_model(model)
        check_unit("box_threshold", box_threshold)
        check_unit("text_threshold", text_threshold)
        check_unit("nms_iou", nms_iou, optional=True)
        check_unit("agnostic_nms_iou", agnostic_nms_iou, optional=True)
        check_positive("max_detections", max_detections)
        check_positive("max_classes_per_forward", max_classes_per_forward, optional=True)
        check_template(text_template)
        self.model, self.revision = model, revision
        self.box_threshold, self.text_threshold = float(box_threshold), float(text_threshold)
        self.nms_iou, self.agnostic_nms_iou, self.max_detections = nms_iou, agnostic_nms_iou, max_detections
        self.text_template, self.max_classes_per_forward = text_template, max_classes_per_forward
        self.prompt_builder = prompt_builder
        self.processor_backend, self.dtype = check_backend(processor_backend), check_dtype(dtype)
        self.family: Optional[DetectorFamily] = None
        self.device: Optional[str] = None


    def setup(self, device: str = "cpu") -> None:
        if self.family is not None and self.device == device:
            return
        loaded = load(self.model, auto_class="AutoModelForZeroShotObjectDetection", types=MODEL_TYPES,
                      device=device, dtype=self.dtype, revision=self.revision,
                      processor_backend=self.processor_backend, description="transformers zero-shot detector")
        options = DetectorOptions(box_threshold=self.box_threshold, text_threshold=self.text_threshold,
                                  nms_iou=self.nms_iou, text_template=self.text_template,
                                  max_classes_per_forward=self.max_classes_per_forward,
                                  prompt_builder=self.prompt_builder)
        self.family = FAMILIES[loaded.model_type](loaded, options)
        self.device = device

    def _require(self) -> DetectorFamily:
        if self.family is None:
            raise ValueError(f"{type(self).__name__}.setup(device) must be called first")
        return self.family

    def prepare(self, image: np.ndarray) -> Any:
        return self._require().prepare(image)

    def detect(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
               prepared: Optional[Sequence[Any]] = None) -> list[Detections]:
        if len(images) != len(tag_names) or (prepared is not None and len(prepared) != len(images)):
            raise ValueError("one list of tag names (and one prepared input) per image is required")
        family = self._require()
        out = [Detections() for _ in images]
        todo = [i for i, names in enumerate(tag_names) if len(names)]
        if not todo:
            return out
        inputs = [prepared[i] if prepared is not None else family.prepare(images[i]) for i in todo]
        parts = family.detect([images[i] for i in todo], [list(tag_names[i]) for i in todo], inputs)
        for i, p in zip(todo, parts):
            out[i] = merge_detections(p, nms_iou=self.nms_iou, agnostic_nms_iou=self.agnostic_nms_iou,
                                      max_detections=self.max_detections)
        return out

    def detect_text(self, images: Sequence[np.ndarray], texts: Sequence[str]) -> list[Detections]:
        """Free-text grounding (``openvocab detect``): caption models ground the text's phrases (transformers'
        phrase decoding); class-list models look for the whole text as one class."""
        if len(images) != len(texts):
            raise ValueError("one text per image is required")
        family = self._require()
        if hasattr(family, "detect_text"):
            return family.detect_text(images, texts, [family.prepare(im) for im in images])
        found = self.detect(images, [[t] for t in texts])
        return [Detections(boxes=d.boxes, scores=d.scores, labels=d.labels, phrases=d.labels) for d in found]
