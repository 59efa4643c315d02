"""``CLIPSegSegmenter``: text-prompted masks (CLIPSeg) for the tags that get no boxes.

The pipeline runs it as ``stuff_segmenter`` on the tags the boxable filter kept away from the detector
(sky, grass, water, snow...). Per tag, CLIPSeg predicts a soft mask at its input size; the probabilities
are brought to the image size (bilinear, as the CLIPSeg examples do) and thresholded. Each mask left with
at least ``min_area`` of the image becomes one instance: box = the mask's bounding box, score = the mean
probability inside the mask, labelled with the tag.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from openvocab.masks import encode_mask, mask_box
from openvocab.registry import SEGMENTERS
from openvocab.stages import Segmenter
from openvocab.structures import Detections, Instances, Regions

from .loading import (HubModel, check_dtype, check_model, check_positive, check_template, check_unit, image_size,
                      load)

MODEL_TYPES = {"clipseg": "CLIPSeg"}


@SEGMENTERS.register_module()
class CLIPSegSegmenter(HubModel, Segmenter):
    """CLIPSeg (``CLIPSegForImageSegmentation``) masks of tags.

    Args:
        model: Hugging Face hub id (``"CIDAS/clipseg-rd64-refined"``) or a local folder; resolved in ``setup()``.
        revision: a hub revision to pin.
        threshold: probability threshold of the masks.
        min_area: smallest mask kept, as a fraction of the image's pixels.
        tags: segment only these tags (case-insensitive; ``None``: every tag the stage is given).
        exclude: never segment these tags.
        text_template: the prompt text of a tag.
        text_batch_size: prompts run together (the image is repeated for each, as CLIPSeg takes it).
        dtype: the weights' dtype.
    """

    what = "transformers CLIPSeg"

    def __init__(self, *, model: str = "CIDAS/clipseg-rd64-refined", revision: Optional[str] = None,
                 threshold: float = 0.5, min_area: float = 0.001, tags: Optional[Sequence[str]] = None,
                 exclude: Sequence[str] = (), text_template: str = "{}", text_batch_size: int = 8,
                 dtype: str = "float32") -> None:
        check_model(model)
        check_unit("threshold", threshold)
        check_unit("min_area", min_area)
        check_positive("text_batch_size", text_batch_size)
        check_template(text_template)
        if isinstance(tags, str) or isinstance(exclude, str):
            raise ValueError("tags / exclude must be lists of tag names, not a string")
        self.model, self.revision, self.threshold, self.min_area = model, revision, float(threshold), float(min_area)
        self.tags = None if tags is None else {t.strip().lower() for t in tags}
        self.exclude = {t.strip().lower() for t in exclude}
        self.text_template, self.text_batch_size, self.dtype = text_template, text_batch_size, check_dtype(dtype)
        self.net = self.processor = None
        self.device: Optional[str] = None


    def setup(self, device: str = "cpu") -> None:
        if self.net is not None and self.device == device:
            return
        loaded = load(self.model, auto_class="CLIPSegForImageSegmentation", types=MODEL_TYPES, device=device,
                      dtype=self.dtype, revision=self.revision, description="transformers CLIPSeg")
        self.net, self.processor, self.device = loaded.model, loaded.processor, device

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """``pixel_values [3, S, S]`` of one image (CLIPSeg's image processor)."""
        if self.processor is None:
            raise ValueError("CLIPSegSegmenter.setup(device) must be called first")
        image_size(image)
        return self.processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def wanted(self, tag: str) -> bool:
        key = tag.strip().lower()
        return key not in self.exclude and (self.tags is None or key in self.tags)

    def probabilities(self, pixel_values: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Soft masks ``[n, S, S]`` (sigmoid of the logits) of ``texts`` on one processed image."""
        enc = self.processor.tokenizer(list(texts), padding="max_length", truncation=True, return_tensors="pt",
                                       max_length=self.net.config.text_config.max_position_embeddings)
        n = len(texts)
        dtype = next(self.net.parameters()).dtype
        pv = pixel_values[None].to(device=self.device, dtype=dtype).expand(n, -1, -1, -1)
        with torch.no_grad():
            logits = self.net(input_ids=enc["input_ids"].to(self.device),
                              attention_mask=enc["attention_mask"].to(self.device), pixel_values=pv).logits
        return logits.float().sigmoid().reshape(n, *logits.shape[-2:]).cpu()

    def instance(self, prob: torch.Tensor, label: str, size: tuple[int, int]) -> Optional[Instances]:
        """One tag's soft mask -> its instance at the image size (``None`` below ``min_area``)."""
        full = F.interpolate(prob[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        mask = (full > self.threshold).numpy()
        area = int(mask.sum())
        if area == 0 or area < self.min_area * mask.size:
            return None
        score = float(full.numpy()[mask].mean())
        return Instances(Detections(boxes=mask_box(mask)[None], scores=[score], labels=(label,)),
                         Regions(masks=(encode_mask(mask),), mask_scores=[score]))

    def segment(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
                prepared: Optional[Sequence[torch.Tensor]] = None) -> list[Instances]:
        if self.net is None:
            raise ValueError("CLIPSegSegmenter.setup(device) must be called first")
        if len(images) != len(tag_names) or (prepared is not None and len(prepared) != len(images)):
            raise ValueError("one list of tag names (and one prepared input) per image is required")
        out = []
        for i, (image, names) in enumerate(zip(images, tag_names)):
            names = [n for n in dict.fromkeys(tag_names[i]) if self.wanted(n)]
            found = []
            if names:
                pv = prepared[i] if prepared is not None else self.prepare(image)
                for s in range(0, len(names), self.text_batch_size):
                    chunk = names[s:s + self.text_batch_size]
                    probs = self.probabilities(pv, [self.text_template.format(n) for n in chunk])
                    found += [self.instance(p, n, image_size(image)) for p, n in zip(probs, chunk)]
            out.append(Instances.concatenate([f for f in found if f is not None]))
        return out
