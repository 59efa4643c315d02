"""The pipeline's plain arguments and rules: devices, vocabularies, which stages go together, and how a stage is
described in a job's fingerprint."""
from __future__ import annotations

import re
import warnings
from typing import Any, Optional, Sequence

import torch

from .batch import PreparedImage
from .registry import CAPTIONERS
from .stages import overrides_prepare


def check_device(device: str) -> str:
    """``device`` if torch knows it and this machine has it; ``ValueError`` with one line otherwise."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available here (no GPU, or a CPU-only torch); "
                             "use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {device!r}; use cpu, cuda, cuda:N or mps")
    return device


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


def check_stages(pipe: Any) -> None:
    """Which stages go together (``ValueError`` naming the problem)."""
    if pipe.segmenter is not None and (pipe.detector is not None or pipe.mask_head is not None):
        raise ValueError("A segmenter replaces detector + mask head: configure either a segmenter or a "
                         "detector (and mask head), not both")
    if pipe.tagger is None and pipe.vocabulary is None and getattr(pipe, "exemplar_detector", None) is None and (
            pipe.detector is not None or pipe.segmenter is not None):
        raise ValueError(f"A {'detector' if pipe.detector is not None else 'segmenter'} needs tags: configure a "
                         "tagger or give a vocabulary (--vocab)")
    if pipe.mask_head is not None and pipe.detector is None and getattr(pipe, "exemplar_detector", None) is None:
        raise ValueError("A mask head needs a detector (or an exemplar detector) to prompt it with boxes")
    if pipe.stuff_segmenter is not None:
        if pipe.tagger is None:
            raise ValueError("A stuff segmenter segments the tagger's tags that are not boxable: configure a "
                             "tagger (a user vocabulary's tags are all boxable)")
        if pipe.detector is not None and pipe.mask_head is None:
            raise ValueError("A stuff segmenter adds masks, so every box needs one too: configure a mask head "
                             "with the detector (or a segmenter)")


def describe_stage(cfg: Any) -> dict:
    if isinstance(cfg, dict):
        return dict(cfg)
    simple = {k: v for k, v in vars(cfg).items()
              if not k.startswith("_") and isinstance(v, (str, int, float, bool, type(None), list, tuple))}
    return {"type": type(cfg).__name__, **simple}


def prepared_for(stage, prepared: Optional[Sequence[PreparedImage]], name: str) -> dict:
    """``{"prepared": [...]}`` for a stage that has its own ``prepare`` and got it run; else ``{}``."""
    if prepared is None or not overrides_prepare(stage):
        return {}
    return {"prepared": [getattr(p, name) for p in prepared]}


def from_old_prompt_builder(prompt_builder: Any, boxable_filter: Any) -> Any:
    cfg = prompt_builder.to_dict() if hasattr(prompt_builder, "to_dict") else prompt_builder
    if not isinstance(cfg, dict):
        raise ValueError("prompt_builder is no longer a pipeline stage; configure boxable_filter=... and the "
                         "detector's own prompt_builder=...")
    extra = sorted(set(cfg) - {"type", "boxable_filter"})
    warnings.warn("the pipeline's prompt_builder is deprecated: prompts are the detector's business "
                  "(detector=dict(..., prompt_builder=...)) and the boxable filter is its own stage "
                  f"(boxable_filter=...){'; ignored: ' + ', '.join(extra) if extra else ''}",
                  DeprecationWarning, stacklevel=3)
    if boxable_filter is None:
        return cfg.get("boxable_filter")
    return boxable_filter


def same_model(tagger_cfg: Any, captioner_cfg: Any, tagger: Any) -> bool:
    """Whether the captioner's config names the tagger's own model (Tag2Text as both): same class, same options."""
    if not (isinstance(tagger_cfg, dict) and isinstance(captioner_cfg, dict)) or tagger is None:
        return False
    cls = CAPTIONERS.get(captioner_cfg.get("type", "")) if isinstance(captioner_cfg.get("type"), str) else None
    same = {k: v for k, v in captioner_cfg.items() if k != "type"} == {k: v for k, v in tagger_cfg.items() if k != "type"}
    return cls is type(tagger) and same


def build_stage(registry, cfg: Any):
    """A stage from its config dict (an instance, or ``None``, as given)."""
    if cfg is None or not isinstance(cfg, dict):
        return cfg
    return registry.build(dict(cfg))
