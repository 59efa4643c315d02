"""``Sam3ExemplarSegmenter``: SAM 3 with exemplar boxes through ``transformers`` (label by example, "find all like
this").

SAM 3 takes exemplars as boxes on the image it segments (positive: "like this", negative: "not this") and finds
every instance of the concept they show, with a box, a mask and a score. So it labels an image with the classes
of the examples that lie in that image: the demo's "find all like this" (boxes drawn on the image), and a job's
images that are also reference images of its examples (recognised by their pixels,
:func:`openvocab.examples.image_digest`). An image holding no example gets nothing from this stage.

Per class the prompt is its exemplar boxes (normalised cxcywh, as ``Sam3Processor`` makes them) with the text
``"visual"`` (what ``Sam3Processor`` puts when only boxes are given; ``text='class'``: the class name instead);
the image encoder runs once per image, each prompt text is encoded once, and the results are read by
transformers' ``post_process_instance_segmentation`` (score = query probability x presence probability).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
import torch

from grounding.hf.loading import (HubModel, check_dtype, check_model, check_positive, check_unit, image_size,
                                  load)
from openvocab.boxes import merge_instances
from openvocab.examples import Example, ExampleMatches, ExampleSet, image_digest
from openvocab.masks import encode_mask
from openvocab.registry import EXEMPLAR_DETECTORS
from openvocab.stages import ExemplarDetector
from openvocab.structures import Detections, Instances, Regions

MODEL_TYPES = {"sam3": "SAM 3"}
TEXTS = ("visual", "class")


@EXEMPLAR_DETECTORS.register_module()
class Sam3ExemplarSegmenter(HubModel, ExemplarDetector):
    """SAM 3 (``Sam3Model`` + ``Sam3Processor``) instances of the example classes whose examples lie in the image.

    Args:
        model: Hugging Face hub id (``"facebook/sam3"``, gated: accept its licence on the hub first) or a folder.
        revision: a hub revision to pin.
        threshold: minimum instance score. mask_threshold: mask probability threshold (0.5 as published).
        text: the prompt text with the boxes: ``'visual'`` (SAM 3's box-only prompt) or ``'class'`` (the class name).
        nms_iou / agnostic_nms_iou: per-class / class-agnostic NMS on the boxes (``None`` = off).
        max_detections: instances kept per image, best first.
        dtype: the weights' dtype.
    """

    what = "transformers SAM 3"
    gives_masks = True

    def __init__(self, *, model: str = "facebook/sam3", revision: Optional[str] = None, threshold: float = 0.5,
                 mask_threshold: float = 0.5, text: str = "visual", nms_iou: Optional[float] = None,
                 agnostic_nms_iou: Optional[float] = None, max_detections: int = 100, dtype: str = "float32") -> None:
        check_model(model)
        check_unit("threshold", threshold)
        check_unit("mask_threshold", mask_threshold)
        check_unit("nms_iou", nms_iou, optional=True)
        check_unit("agnostic_nms_iou", agnostic_nms_iou, optional=True)
        check_positive("max_detections", max_detections)
        if text not in TEXTS:
            raise ValueError(f"text must be one of {', '.join(TEXTS)} (got {text!r})")
        self.model, self.revision, self.text = model, revision, text
        self.threshold, self.mask_threshold = float(threshold), float(mask_threshold)
        self.nms_iou, self.agnostic_nms_iou, self.max_detections = nms_iou, agnostic_nms_iou, max_detections
        self.dtype = check_dtype(dtype)
        self.net = self.processor = None
        self.device: Optional[str] = None
        self._texts: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.encoded_images = 0  #: images the vision encoder ran on (counted, for tests)

    def setup(self, device: str = "cpu") -> None:
        if self.net is not None and self.device == device:
            return
        loaded = load(self.model, auto_class="AutoModel", types=MODEL_TYPES, device=device, dtype=self.dtype,
                      revision=self.revision, description=self.what)
        self.net, self.processor, self.device = loaded.model, loaded.processor, device
        self._texts.clear()

    def _require(self):
        if self.net is None:
            raise ValueError(f"{type(self).__name__}.setup(device) must be called first")
        return self.net

    def prepare(self, image: np.ndarray) -> tuple[torch.Tensor, str]:
        """``(pixel_values [3, S, S], image digest)`` of one image."""
        self._require()
        image_size(image)
        return self.processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0], image_digest(image)

    def text_features(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(text features [1, L, D], attention mask [1, L])`` of one prompt text, computed once (LRU, 256)."""
        if text not in self._texts:
            enc = self.processor(text=[text], return_tensors="pt")
            ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
            with torch.no_grad():
                feats = self._require().get_text_features(input_ids=ids, attention_mask=mask).pooler_output
            self._texts[text] = (feats, mask)
        self._texts.move_to_end(text)
        while len(self._texts) > 256:
            self._texts.popitem(last=False)
        return self._texts[text]

    @staticmethod
    def boxes(examples: Sequence[Example], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_boxes [1, n, 4] normalised cxcywh, input_boxes_labels [1, n])`` of exemplars on an image of
        ``size`` (h, w), as ``Sam3Processor`` makes them from xyxy pixels."""
        h, w = size
        xyxy = torch.tensor(np.stack([e.box for e in examples]), dtype=torch.float32) / torch.tensor([w, h, w, h])
        cxcywh = torch.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                              xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], dim=-1)
        return cxcywh[None], torch.tensor([[1 if e.positive else 0 for e in examples]], dtype=torch.int64)

    def find(self, vision, k: int, examples: Sequence[Example], label: str, size: tuple[int, int]) -> Instances:
        """Instances of one class (its exemplars ``examples`` on image ``k`` of the encoded batch ``vision``)."""
        net = self._require()
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        feats, mask = self.text_features("visual" if self.text == "visual" else label)
        boxes, labels = self.boxes(examples, size)
        one = type(vision)(fpn_hidden_states=tuple(x[k:k + 1] for x in vision.fpn_hidden_states),
                           fpn_position_encoding=tuple(x[k:k + 1] for x in vision.fpn_position_encoding))
        with torch.no_grad():
            out = net(vision_embeds=one, text_embeds=BaseModelOutputWithPooling(pooler_output=feats),
                      attention_mask=mask, input_boxes=boxes.to(device=self.device, dtype=feats.dtype),
                      input_boxes_labels=labels.to(self.device))
        (r,) = self.processor.post_process_instance_segmentation(out, threshold=self.threshold,
                                                                  mask_threshold=self.mask_threshold,
                                                                  target_sizes=[size])
        scores = r["scores"].float().cpu().numpy()
        return Instances(Detections(boxes=r["boxes"].float().cpu().numpy(), scores=scores, labels=(label,) * len(scores)),
                         Regions(masks=tuple(encode_mask(m.cpu().numpy().astype(bool)) for m in r["masks"]),
                                 mask_scores=scores))

    def prepare_examples(self, examples: ExampleSet) -> list[str]:
        images = len({e.image_id for e in examples})
        return [f"{type(self).__name__}: {len(examples)} exemplar boxes on {images} reference image(s); SAM 3 finds "
                "a class in the images that hold its examples"]

    def detect_examples(self, images: Sequence[np.ndarray], examples: ExampleSet,
                        prepared: Optional[Sequence[tuple[torch.Tensor, str]]] = None) -> list[ExampleMatches]:
        net = self._require()
        if prepared is not None and len(prepared) != len(images):
            raise ValueError("one prepared input per image is required")
        out = [ExampleMatches() for _ in images]
        inputs = [prepared[i] if prepared is not None else self.prepare(image) for i, image in enumerate(images)]
        todo = [i for i, (_, digest) in enumerate(inputs) if examples.in_image(digest)]
        dtype = next(net.parameters()).dtype
        for i in todo:
            with torch.no_grad():
                vision = net.get_vision_features(pixel_values=inputs[i][0][None].to(device=self.device, dtype=dtype))
            self.encoded_images += 1
            here = examples.in_image(inputs[i][1])
            parts = [self.find(vision, 0, [e for e in here if e.class_name == name], name, image_size(images[i]))
                     for name in examples.classes if any(e.class_name == name and e.positive for e in here)]
            found = merge_instances(parts, nms_iou=self.nms_iou, agnostic_nms_iou=self.agnostic_nms_iou,
                                    max_detections=self.max_detections)
            out[i] = ExampleMatches(found.detections, found.regions)
        return out
