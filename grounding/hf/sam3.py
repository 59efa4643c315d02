"""``Sam3Segmenter``: SAM 3 concept segmentation through ``transformers`` (tags in, instances out).

Each tag is a concept prompt: SAM 3 finds every instance of it with a box, a mask and a score (the query's
probability times the prompt's presence probability, as transformers' ``post_process_instance_segmentation``
computes it). The image encoder runs once per image (``image_batch_size`` images at a time); the image's
tags are decoded ``text_batch_size`` at a time against its features, each tag's text features computed
once and kept (a ``--vocab`` job encodes its vocabulary once).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
import torch

from openvocab.boxes import merge_instances
from openvocab.masks import encode_mask
from openvocab.registry import SEGMENTERS
from openvocab.stages import Segmenter
from openvocab.structures import Detections, Instances, Regions

from .loading import (HubModel, check_dtype, check_model, check_positive, check_template, check_unit, image_size,
                      load)

MODEL_TYPES = {"sam3": "SAM 3"}


@SEGMENTERS.register_module()
class Sam3Segmenter(HubModel, Segmenter):
    """SAM 3 (``Sam3Model`` + ``Sam3Processor``) in place of detector + mask head.

    Args:
        model: Hugging Face hub id (``"facebook/sam3"``, gated: accept its licence on the hub first) or a local
            folder; resolved in ``setup()``.
        revision: a hub revision to pin.
        threshold: minimum instance score. mask_threshold: mask probability threshold (0.5 as published).
        nms_iou / agnostic_nms_iou: per-tag / class-agnostic NMS on the boxes (``None`` = off; SAM 3 needs
            none within a prompt, the class-agnostic one removes one object found through two tags).
        max_detections: instances kept per image, best first.
        text_template: the prompt text of a tag.
        text_batch_size: prompts decoded together against one image's features.
        image_batch_size: images encoded together.
        dtype: the weights' dtype.
    """

    what = "transformers SAM 3"

    def __init__(self, *, model: str = "facebook/sam3", revision: Optional[str] = None, threshold: float = 0.5,
                 mask_threshold: float = 0.5, nms_iou: Optional[float] = None,
                 agnostic_nms_iou: Optional[float] = None, max_detections: int = 100, text_template: str = "{}",
                 text_batch_size: int = 8, image_batch_size: int = 1, dtype: str = "float32") -> None:
        check_model(model)
        check_unit("threshold", threshold)
        check_unit("mask_threshold", mask_threshold)
        check_unit("nms_iou", nms_iou, optional=True)
        check_unit("agnostic_nms_iou", agnostic_nms_iou, optional=True)
        for name, v in (("max_detections", max_detections), ("text_batch_size", text_batch_size),
                        ("image_batch_size", image_batch_size)):
            check_positive(name, v)
        check_template(text_template)
        self.model, self.revision = model, revision
        self.threshold, self.mask_threshold = float(threshold), float(mask_threshold)
        self.nms_iou, self.agnostic_nms_iou, self.max_detections = nms_iou, agnostic_nms_iou, max_detections
        self.text_template, self.text_batch_size = text_template, text_batch_size
        self.image_batch_size = image_batch_size
        self.dtype = check_dtype(dtype)
        self.net = self.processor = None
        self.device: Optional[str] = None
        self._texts: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.encoded_images = 0  #: images the vision encoder ran on (counted, for tests)


    def setup(self, device: str = "cpu") -> None:
        if self.net is not None and self.device == device:
            return
        loaded = load(self.model, auto_class="AutoModel", types=MODEL_TYPES, device=device, dtype=self.dtype,
                      revision=self.revision, description="transformers SAM 3")
        self.net, self.processor, self.device = loaded.model, loaded.processor, device
        self._texts.clear()

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """``pixel_values [3, S, S]`` of one image (the SAM 3 image processor)."""
        if self.processor is None:
            raise ValueError("Sam3Segmenter.setup(device) must be called first")
        image_size(image)
        return self.processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def text(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(text features [n, L, D], attention mask [n, L])`` of ``texts``, each computed once (LRU, 1024)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._texts]
        if missing:
            enc = self.processor(text=missing, return_tensors="pt")
            ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
            with torch.no_grad():
                feats = self.net.get_text_features(input_ids=ids, attention_mask=mask).pooler_output
            for i, t in enumerate(missing):
                self._texts[t] = (feats[i:i + 1], mask[i:i + 1])
        for t in texts:
            self._texts.move_to_end(t)
        while len(self._texts) > 1024:
            self._texts.popitem(last=False)
        return torch.cat([self._texts[t][0] for t in texts]), torch.cat([self._texts[t][1] for t in texts])

    def decode(self, vision, i: int, texts: Sequence[str], labels: Sequence[str],
               size: tuple[int, int]) -> list[Instances]:
        """Instances of each of ``texts`` (labelled ``labels``) in image ``i`` of the encoded batch ``vision``."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        n = len(texts)
        feats, mask = self.text(texts)
        def repeat(xs):  # image i's features, once per prompt (views, no copies)
            return tuple(x[i:i + 1].expand(n, *x.shape[1:]) for x in xs)

        one = type(vision)(fpn_hidden_states=repeat(vision.fpn_hidden_states),
                           fpn_position_encoding=repeat(vision.fpn_position_encoding))
        with torch.no_grad():
            out = self.net(vision_embeds=one, text_embeds=BaseModelOutputWithPooling(pooler_output=feats),
                           attention_mask=mask)
        found = []
        for j, label in enumerate(labels):  # one prompt at a time: only its masks are ever at full size
            one = type(out)(pred_logits=out.pred_logits[j:j + 1], pred_boxes=out.pred_boxes[j:j + 1],
                            pred_masks=out.pred_masks[j:j + 1],
                            presence_logits=None if out.presence_logits is None else out.presence_logits[j:j + 1])
            (r,) = self.processor.post_process_instance_segmentation(
                one, threshold=self.threshold, mask_threshold=self.mask_threshold, target_sizes=[size])
            scores = r["scores"].float().cpu().numpy()
            found.append(Instances(Detections(boxes=r["boxes"].float().cpu().numpy(), scores=scores,
                                              labels=(label,) * len(scores)),
                                   Regions(masks=tuple(encode_mask(m.cpu().numpy().astype(bool)) for m in r["masks"]),
                                           mask_scores=scores)))
        return found

    def segment(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
                prepared: Optional[Sequence[torch.Tensor]] = None) -> list[Instances]:
        if self.net is None:
            raise ValueError("Sam3Segmenter.setup(device) must be called first")
        if len(images) != len(tag_names) or (prepared is not None and len(prepared) != len(images)):
            raise ValueError("one list of tag names (and one prepared input) per image is required")
        out = [Instances() for _ in images]
        todo = [i for i, names in enumerate(tag_names) if len(names)]
        dtype = next(self.net.parameters()).dtype
        for start in range(0, len(todo), self.image_batch_size):
            idx = todo[start:start + self.image_batch_size]
            pv = torch.stack([prepared[i] if prepared is not None else self.prepare(images[i]) for i in idx])
            with torch.no_grad():
                vision = self.net.get_vision_features(pixel_values=pv.to(device=self.device, dtype=dtype))
            self.encoded_images += len(idx)
            for k, i in enumerate(idx):
                label: dict[str, str] = {}  # prompt text -> the (first) tag it stands for
                for name in tag_names[i]:
                    label.setdefault(self.text_template.format(name), name)
                texts, parts = list(label), []
                for s in range(0, len(texts), self.text_batch_size):
                    chunk = texts[s:s + self.text_batch_size]
                    parts += self.decode(vision, k, chunk, [label[t] for t in chunk], image_size(images[i]))
                out[i] = merge_instances(parts, nms_iou=self.nms_iou, agnostic_nms_iou=self.agnostic_nms_iou,
                                         max_detections=self.max_detections)
        return out

