"""OWLv2 / OWL-ViT through ``transformers``: one text query per tag.

Every box (one per image patch) is scored against every query; its label is the best query and its score
that query's probability (transformers' ``post_process_grounded_object_detection``, which also maps OWLv2's
boxes from its square-padded input back to the image). A box's coordinates come from the image alone, so a
long vocabulary run as several chunks (``max_classes_per_forward``) gives exactly the one-forward result:
the chunks' query logits are put side by side before post-processing. Images with the same tags run in
one forward.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from openvocab.structures import Detections

from .family import DetectorFamily, same_tags
from .loading import image_size


def chunks(names: Sequence[str], size) -> list[list[str]]:
    """``names`` in consecutive chunks of at most ``size`` (``None``: one chunk)."""
    names = list(names)
    size = size or max(len(names), 1)
    return [names[i:i + size] for i in range(0, len(names), size)]


class OwlFamily(DetectorFamily):
    """OWL-style models: queries are the tags (through ``text_template``)."""

    def __init__(self, loaded, options) -> None:
        super().__init__(loaded, options)
        self.max_text_len = int(self.model.config.text_config.max_position_embeddings)

    def queries(self, texts: Sequence[str]) -> dict:
        """Token ids of ``texts`` as the OWL processor pads them (to the text encoder's length; longer ones cut)."""
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_text_len,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def forward(self, pixel_values: torch.Tensor, texts: Sequence[str]):
        """The model's outputs for a batch of images that all use the queries ``texts``."""
        q = self.queries(texts)
        n = pixel_values.shape[0]
        with torch.no_grad():
            return self.model(pixel_values=pixel_values, input_ids=q["input_ids"].repeat(n, 1),
                              attention_mask=q["attention_mask"].repeat(n, 1))

    def detect(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
               prepared: Sequence[torch.Tensor]) -> list[list[Detections]]:
        out: list[list[Detections]] = [[] for _ in images]
        for names, idx in same_tags(tag_names).items():
            pixels = self.pixels([prepared[i] for i in idx])
            texts = [self.options.text_template.format(n) for n in names]
            logits, outputs = [], None
            for part in chunks(texts, self.options.max_classes_per_forward):
                outputs = self.forward(pixels, part)
                logits.append(outputs.logits.float())
            merged = type(outputs)(logits=torch.cat(logits, -1).cpu(), pred_boxes=outputs.pred_boxes.float().cpu())
            results = self.processor.post_process_grounded_object_detection(
                merged, threshold=self.options.box_threshold, target_sizes=[image_size(images[i]) for i in idx])
            for i, r in zip(idx, results):
                out[i].append(Detections(boxes=r["boxes"].numpy(), scores=r["scores"].numpy(),
                                         labels=tuple(names[j] for j in r["labels"].tolist())))
        return out
