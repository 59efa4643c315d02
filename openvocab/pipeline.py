"""The labeling pipeline: tagger -> prompt builder -> detector -> mask head, on batches of images.

Every stage but the prompt builder may be absent:

* no tagger: a user vocabulary (``vocabulary=[...]``) is used as the image's tags;
* no detector: tags only (``ImageResult.detections`` empty);
* no mask head: boxes only (``ImageResult.regions`` is ``None``).

Tags the prompt builder finds not boxable (scenes, actions, attributes) never reach the detector
but stay in ``ImageResult.tags`` (with ``boxable=False``).
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from typing import Any, Optional, Sequence

import numpy as np
import torch

from .registry import DETECTORS, MASK_HEADS, PROMPT_BUILDERS, TAGGERS
from .stages import Detector, MaskHead, PromptBuilder, Tagger
from .structures import Detections, ImageInfo, ImageResult, Prompt, Tags, TagSource

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _build(registry, cfg: Any):
    if cfg is None or not isinstance(cfg, dict):
        return cfg
    return registry.build(dict(cfg))


def parse_vocabulary(text: str | Sequence[str]) -> list[str]:
    """``"cat, dog . fire hydrant"`` -> ``["cat", "dog", "fire hydrant"]`` (order kept, duplicates dropped).

    Commas separate classes, and so does a free-standing dot (``"cat . dog ."``); a dot inside a
    name (``"st. bernard"``) does not.
    """
    items = text if not isinstance(text, str) else re.split(r",|(?:^|\s)\.(?=\s|$)", text)
    out: list[str] = []
    for item in items:
        item = " ".join(str(item).split())
        if item and item.lower() not in {o.lower() for o in out}:
            out.append(item)
    if not out:
        raise ValueError(f"Empty vocabulary: {text!r}")
    return out


class Pipeline:
    """Runs the stages on batches of images.

    Args:
        tagger / prompt_builder / detector / mask_head: stage instances or registry config dicts.
        vocabulary: user classes used instead of a tagger (``--vocab``); with a tagger they are
            added to its tags.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast).
    """

    def __init__(self, *, tagger: Tagger | dict | None = None,
                 prompt_builder: PromptBuilder | dict | None = None,
                 detector: Detector | dict | None = None, mask_head: MaskHead | dict | None = None,
                 vocabulary: Sequence[str] | str | None = None, device: str = "cpu",
                 precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.tagger: Optional[Tagger] = _build(TAGGERS, tagger)
        self.prompt_builder: PromptBuilder = _build(
            PROMPT_BUILDERS, prompt_builder if prompt_builder is not None else dict(type="TagPromptBuilder"))
        self.detector: Optional[Detector] = _build(DETECTORS, detector)
        self.mask_head: Optional[MaskHead] = _build(MASK_HEADS, mask_head)
        self.vocabulary = parse_vocabulary(vocabulary) if vocabulary else None
        if self.tagger is None and self.vocabulary is None and self.detector is not None:
            raise ValueError("A detector needs tags: configure a tagger or give a vocabulary (--vocab)")
        if self.mask_head is not None and self.detector is None:
            raise ValueError("A mask head needs a detector to prompt it with boxes")
        self.device = device
        self.precision = precision
        self._ready = False

    @property
    def stages(self) -> list:
        return [s for s in (self.tagger, self.detector, self.mask_head) if s is not None]

    def setup(self) -> "Pipeline":
        """Resolve every stage's weights (may download) and move to the device, before any image."""
        from .hub import MissingFileError

        if not self._ready:
            for stage in self.stages:
                try:
                    stage.setup(self.device)
                except MissingFileError as e:
                    needed = [f for s in self.stages for f in s.required_files()]
                    if len(needed) > 1:  # say once everything this pipeline will look for
                        raise MissingFileError(f"{e}\n  This pipeline needs: {', '.join(needed)}.") from None
                    raise
            self._ready = True
        return self

    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=dtype)

    def image_tags(self, images: Sequence[np.ndarray]) -> list[Tags]:
        """Tags per image (tagger and/or user vocabulary), each marked boxable or not."""
        if self.tagger is not None:
            with torch.inference_mode(), self._autocast():
                tags = self.tagger.tag(images)
        else:
            tags = [Tags() for _ in images]
        out = []
        for t in tags:
            items = list(t.tags)
            if self.vocabulary:
                have = {x.name.lower() for x in items}
                items += [Tags.from_names([v], source=TagSource.USER)[0]
                          for v in self.vocabulary if v.lower() not in have]
            items = [replace(x, boxable=True if x.source == TagSource.USER
                             else self.prompt_builder.is_boxable(x.name)) for x in items]
            out.append(Tags(tuple(items)))
        return out

    def prompts_for(self, tags: Tags) -> tuple[list[Prompt], dict[str, str]]:
        """Detector prompts for the boxable tags, and caption-name -> tag-name mapping."""
        from .prompt import normalise_tag

        names = [t.name for t in tags if t.boxable]
        if not names or self.detector is None:
            return [], {}
        back = {}
        for n in names:
            back.setdefault(normalise_tag(n), n)
        prompts = self.prompt_builder.build(names, self.detector.count_tokens, self.detector.max_text_tokens)
        return prompts, back

    def __call__(self, images: Sequence[np.ndarray], infos: Sequence[ImageInfo]) -> list[ImageResult]:
        """Label a batch of RGB uint8 images (already EXIF-rotated)."""
        if len(images) != len(infos):
            raise ValueError(f"{len(images)} images but {len(infos)} infos")
        self.setup()
        tags = self.image_tags(images)
        dets: list[Detections] = [Detections() for _ in images]
        if self.detector is not None:
            prompts, backs = zip(*[self.prompts_for(t) for t in tags]) if images else ((), ())
            todo = [i for i, p in enumerate(prompts) if p]
            if todo:
                with torch.inference_mode(), self._autocast():
                    found = self.detector.detect([images[i] for i in todo], [prompts[i] for i in todo])
                for i, d in zip(todo, found):
                    dets[i] = Detections(boxes=d.boxes, scores=d.scores,
                                         labels=tuple(backs[i].get(l, l) for l in d.labels), phrases=d.phrases)
        results = []
        for img, info, t, d in zip(images, infos, tags, dets):
            regions = None
            if self.mask_head is not None:
                with torch.inference_mode(), self._autocast():
                    regions = self.mask_head.segment(img, d)
            results.append(ImageResult(image=info, tags=t, detections=d, regions=regions))
        return results


def build_pipeline(cfg, *, vocabulary: Sequence[str] | str | None = None, device: str | None = None,
                   precision: str | None = None, no_tagger: bool = False) -> Pipeline:
    """A :class:`Pipeline` from an mmengine ``Config`` (keys ``tagger``, ``prompt_builder``,
    ``detector``, ``mask_head``, ``vocabulary``, ``device``, ``precision``)."""
    get = cfg.get if hasattr(cfg, "get") else lambda k, d=None: getattr(cfg, k, d)
    vocab = vocabulary if vocabulary is not None else get("vocabulary", None)
    return Pipeline(
        tagger=None if (no_tagger or vocabulary is not None) else _to_dict(get("tagger", None)),
        prompt_builder=_to_dict(get("prompt_builder", None)),
        detector=_to_dict(get("detector", None)),
        mask_head=_to_dict(get("mask_head", None)),
        vocabulary=vocab, device=device or get("device", "cpu"),
        precision=precision or get("precision", "fp32"))


def _to_dict(x):
    if x is None:
        return None
    return x.to_dict() if hasattr(x, "to_dict") else dict(x) if isinstance(x, dict) else x
