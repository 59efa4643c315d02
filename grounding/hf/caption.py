"""Caption models (Grounding DINO, MM-Grounding-DINO / LLMDet) through ``transformers``.

Tags become ``"a . b . c ."`` captions under the model's ``max_text_len`` (the shared
:class:`grounding.prompt.PromptChunker`, built once per vocabulary). Each caption is tokenized once and runs
with every image of the batch that needs it; images are batched only with images of the same processed
size, so a result never depends on its batch (padding changes the outputs). A box is kept when its best
token probability exceeds ``box_threshold`` (the official ``predict`` and transformers'
``post_process_grounded_object_detection``), labelled with the tag whose token span holds the highest
probability and scored with it, as the native detector (:mod:`grounding.groundingdino.postprocess`).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch

from ..prompt import Prompt, PromptChunker
from openvocab.structures import Detections

from ..groundingdino.postprocess import best_tags, box_threshold, char_span_to_token_span, cxcywh_to_xyxy_pixels
from ..groundingdino.tokenize import count_tokens, preprocess_caption
from .family import DetectorFamily
from .loading import image_size


class CaptionFamily(DetectorFamily):
    """Grounding-DINO-style models: one caption (prompt chunk) per forward, boxes labelled by token spans."""

    text_cache_size = 64

    def __init__(self, loaded, options) -> None:
        super().__init__(loaded, options)
        self.max_text_len = int(self.model.config.max_text_len)
        self.chunker = PromptChunker(count_tokens=lambda text: count_tokens(self.tokenizer, text),
                                     max_tokens=self.max_text_len, builder=options.prompt_builder)
        self._texts: OrderedDict[str, tuple[dict, list[tuple[int, int]]]] = OrderedDict()

    def text(self, caption: str) -> tuple[dict, list[tuple[int, int]]]:
        """The model's text inputs (batch 1, on the device) and each token's character offsets."""
        hit = self._texts.get(caption)
        if hit is None:
            enc = self.tokenizer(caption, return_tensors="pt", return_offsets_mapping=True,
                                 return_token_type_ids=True)
            offsets = [(int(a), int(b)) for a, b in enc.pop("offset_mapping")[0].tolist()]
            hit = {k: v.to(self.device) for k, v in enc.items()}, offsets
            self._texts[caption] = hit
            if len(self._texts) > self.text_cache_size:
                self._texts.popitem(last=False)
        return hit

    def forward(self, pixel_values: torch.Tensor, caption: str) -> tuple[torch.Tensor, torch.Tensor, list]:
        """``(logits [n, Q, max_text_len], boxes [n, Q, 4] cxcywh, token offsets)`` of ``caption`` on a batch."""
        inputs, offsets = self.text(caption)
        n = pixel_values.shape[0]
        with torch.no_grad():
            mask = torch.ones_like(pixel_values[:, 0], dtype=torch.long)  # same-size images: no padding
            out = self.model(pixel_values=pixel_values, pixel_mask=mask,
                             **{k: v.expand(n, -1) for k, v in inputs.items()})
        return out.logits.float().cpu(), out.pred_boxes.float().cpu(), offsets

    def label(self, logits: torch.Tensor, boxes: torch.Tensor, offsets, prompt: Prompt,
              height: int, width: int) -> Detections:
        """One image's boxes for one prompt chunk: thresholds, tag labels and scores, pixel boxes."""
        th = box_threshold(logits, boxes, self.options.box_threshold)
        if th.indices.numel() == 0:
            return Detections()
        score, arg = best_tags(th.probs, [char_span_to_token_span(offsets, s.start, s.end) for s in prompt.spans])
        keep = score > self.options.text_threshold
        return Detections(boxes=cxcywh_to_xyxy_pixels(th.boxes[keep], height, width).numpy(),
                          scores=score[keep].numpy(),
                          labels=tuple(prompt.spans[t].label for t in arg[keep].tolist()))

    def detect(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
               prepared: Sequence[torch.Tensor]) -> list[list[Detections]]:
        prompts = [self.chunker(names) for names in tag_names]
        parts: list[list[Detections]] = [[] for _ in images]
        groups: dict[tuple, list[int]] = {}
        for i, t in enumerate(prepared):
            groups.setdefault(tuple(t.shape), []).append(i)
        for idx in groups.values():
            pixels = self.pixels([prepared[i] for i in idx])
            by_caption: dict[str, list[tuple[int, Prompt]]] = {}
            for k, i in enumerate(idx):
                for p in prompts[i]:
                    by_caption.setdefault(p.caption, []).append((k, p))
            for caption, users in by_caption.items():
                rows = [k for k, _ in users]
                logits, boxes, offsets = self.forward(pixels[rows], caption)
                for j, (k, prompt) in enumerate(users):
                    i = idx[k]
                    parts[i].append(self.label(logits[j], boxes[j], offsets, prompt, *image_size(images[i])))
        return parts

    def detect_text(self, images: Sequence[np.ndarray], texts: Sequence[str],
                    prepared: Sequence[torch.Tensor]) -> list[Detections]:
        """Free-text grounding: the text as the caption (lower case, ending with '.', as the official ``predict``);
        boxes, scores and phrases are transformers' ``post_process_grounded_object_detection``."""
        out = []
        for image, text, pixels in zip(images, texts, prepared):
            caption = preprocess_caption(text)
            inputs, _ = self.text(caption)
            with torch.no_grad():
                raw = self.model(pixel_values=self.pixels([pixels]), **inputs)
            r = self.processor.post_process_grounded_object_detection(
                raw, input_ids=inputs["input_ids"], threshold=self.options.box_threshold,
                text_threshold=self.options.text_threshold, target_sizes=[image_size(image)])[0]
            phrases = tuple(r["text_labels"])
            out.append(Detections(boxes=r["boxes"].float().cpu().numpy(), scores=r["scores"].float().cpu().numpy(),
                                  labels=phrases, phrases=phrases))
        return out
