"""Tag strings + image tokens -> Tag2Text captions (tag encoder, then the text decoder's generation)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .generation import Generated, beam_search, sample
from .model import Tag2Text
from .tokenizer import Tag2TextTokenizer


@dataclass(frozen=True, kw_only=True)
class CaptionSettings:
    """How captions are generated (the official ``Tag2Text.generate`` arguments).

    Attributes:
        sample: nucleus sampling instead of beam search.
        num_beams: beams of the beam search (official 3).
        max_length: longest sequence, the 4 prompt tokens included (official ``generate`` 30; the official
            ``inference_tag2text`` passes 50).
        min_length: ``[SEP]`` is forbidden while the sequence is shorter (official 10).
        top_p / top_k: sampling filters (official 0.9 and the BERT config's 50).
        repetition_penalty: ``None`` = the official one (1.0 with beams, 1.1 when sampling).
    """

    sample: bool = False
    num_beams: int = 3
    max_length: int = 30
    min_length: int = 10
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: Optional[float] = None

    def __post_init__(self) -> None:
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.max_length < 5 or self.min_length < 0:
            raise ValueError(f"max_length must exceed the 4 prompt tokens and min_length be >= 0, got "
                             f"{self.max_length} / {self.min_length}")
        if not 0.0 < self.top_p <= 1.0 or self.top_k < 0:
            raise ValueError(f"top_p must be in (0, 1] and top_k >= 0, got {self.top_p} / {self.top_k}")
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be positive, got {self.repetition_penalty}")


def _step(model: Tag2Text, cross_kv: list):
    def step(new_ids: torch.Tensor, past: Optional[list]):
        logits, present = model.text_decoder(new_ids, cross_kv=cross_kv, past=past)
        return logits[:, -1], present
    return step


@torch.no_grad()
def generate(model: Tag2Text, tokenizer: Tag2TextTokenizer, image_embeds: torch.Tensor,
             tag_strings: Sequence[str], settings: CaptionSettings,
             generator: Optional[torch.Generator] = None) -> Generated:
    """Sequences for ``image_embeds [B, 1 + L, W]`` guided by ``tag_strings[b]`` (``"t1 | t2"``, may be empty).

    The tags are encoded once per image; with beams, the decoder's cross-attention keys/values are repeated
    per beam (the official code repeats the images and tag strings instead: the same numbers)."""
    if len(tag_strings) != image_embeds.shape[0]:
        raise ValueError(f"{len(tag_strings)} tag strings for {image_embeds.shape[0]} images")
    device = image_embeds.device
    ids, mask = tokenizer.encode_tags(tag_strings)
    states = model.encode_tags(ids.to(device), mask.to(device), image_embeds)
    cross_kv = model.text_decoder.cross_key_values(states)
    prompt = tokenizer.prompt_ids(len(tag_strings)).to(device)
    common = dict(max_length=settings.max_length, min_length=settings.min_length, eos_id=tokenizer.sep_id,
                  pad_id=tokenizer.pad_id)
    if settings.sample:
        penalty = 1.1 if settings.repetition_penalty is None else settings.repetition_penalty
        return sample(_step(model, cross_kv), prompt, top_p=settings.top_p, top_k=settings.top_k,
                      repetition_penalty=penalty, generator=generator, **common)
    nb = settings.num_beams
    cross_kv = [(k.repeat_interleave(nb, dim=0), v.repeat_interleave(nb, dim=0)) for k, v in cross_kv]
    penalty = 1.0 if settings.repetition_penalty is None else settings.repetition_penalty
    return beam_search(_step(model, cross_kv), prompt, num_beams=nb, repetition_penalty=penalty, **common)
