"""OmDet-Turbo through ``transformers``: a class list and a task prompt (``"Detect a, b, c."``).

The task prompt goes through the text encoder, which takes ``max_length`` tokens (77 for the released
model): a vocabulary is cut into chunks whose task prompt fits (and of at most ``max_classes_per_forward``
classes), each chunk runs as its own forward, and the chunks' boxes are merged by the stage. Boxes, scores
and labels are transformers' ``post_process_grounded_object_detection`` (top queries x classes, threshold,
per-class NMS, clipping), as the model is published.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch

from openvocab.structures import Detections

from .family import DetectorFamily, same_tags
from .loading import image_size


def task_prompt(classes: Sequence[str]) -> str:
    """The processor's default task prompt for ``classes``."""
    return f"Detect {', '.join(classes)}."


class OmDetFamily(DetectorFamily):
    """OmDet-Turbo: classes and task prompt encoded by the CLIP text tower (cached by the model)."""

    cache_size = 256

    def __init__(self, loaded, options) -> None:
        super().__init__(loaded, options)
        self.max_text_len = int((getattr(self.processor, "text_kwargs", None) or {}).get("max_length", 77))
        self._chunks: OrderedDict[tuple[str, ...], tuple[tuple[str, ...], ...]] = OrderedDict()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def chunk(self, texts: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        """``texts`` cut greedily, in order, so each chunk's task prompt fits (one class alone always runs)."""
        key = tuple(texts)
        hit = self._chunks.get(key)
        if hit is not None:
            return hit
        out, chunk = [], []
        limit = self.options.max_classes_per_forward
        for t in texts:
            full = bool(limit) and len(chunk) == limit
            if chunk and (full or self.count_tokens(task_prompt(chunk + [t])) > self.max_text_len):
                out.append(tuple(chunk))
                chunk = []
            chunk.append(t)
        if chunk:
            out.append(tuple(chunk))
        self._chunks[key] = tuple(out)
        if len(self._chunks) > self.cache_size:
            self._chunks.popitem(last=False)
        return self._chunks[key]

    def encode(self, texts: Sequence[str]) -> dict:
        """Token ids as the OmDet processor makes them (padded to ``max_length``, truncated)."""
        return self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_text_len,
                              return_tensors="pt")

    def forward(self, pixel_values: torch.Tensor, classes: Sequence[str]):
        n = pixel_values.shape[0]
        task, cls = self.encode([task_prompt(classes)] * n), self.encode(list(classes) * n)
        with torch.no_grad():
            return self.model(pixel_values=pixel_values,
                              classes_input_ids=cls["input_ids"].to(self.device),
                              classes_attention_mask=cls["attention_mask"].to(self.device),
                              tasks_input_ids=task["input_ids"].to(self.device),
                              tasks_attention_mask=task["attention_mask"].to(self.device),
                              classes_structure=torch.full((n,), len(classes), dtype=torch.long, device=self.device))

    def detect(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
               prepared: Sequence[torch.Tensor]) -> list[list[Detections]]:
        out: list[list[Detections]] = [[] for _ in images]
        nms = 1.0 if self.options.nms_iou is None else self.options.nms_iou
        for names, idx in same_tags(tag_names).items():
            pixels = self.pixels([prepared[i] for i in idx])
            label: dict[str, str] = {}  # query text -> the tag it stands for
            for n in names:
                label.setdefault(self.options.text_template.format(n), n)
            for chunk in self.chunk(list(label)):
                outputs = self.forward(pixels, chunk)
                results = self.processor.post_process_grounded_object_detection(
                    outputs, threshold=self.options.box_threshold, nms_threshold=nms,
                    target_sizes=[image_size(images[i]) for i in idx])
                for i, r in zip(idx, results):
                    out[i].append(Detections(boxes=r["boxes"].float().cpu().numpy(),
                                             scores=r["scores"].float().cpu().numpy(),
                                             labels=tuple(label[chunk[j]] for j in r["labels"].tolist())))
        return out
