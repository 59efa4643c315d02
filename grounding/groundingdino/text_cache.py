"""Tokenized captions and their text-encoder features, computed once per caption and reused.

A ``--vocab`` job asks for the same few prompt chunks on every image: each caption is tokenized
and run through BERT + ``feat_map`` once. Entries are keyed by the caption, the device, the autocast
dtype in force and the version counters of the text encoder's parameters (an optimizer step bumps
them in place, so features computed before a training step are never served after it).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import torch

from .tokenize import tokenize


@dataclass(frozen=True)
class EncodedText:
    """One caption, ready for :meth:`GroundingDINO.forward` (batch dimension 1).

    Attributes:
        tensors: ``(input_ids [1,T], text_token_mask [1,T], text_block_mask [1,T,T], position_ids [1,T])``
            on the device.
        features: ``[1, T, 256]`` ``encode_text`` output.
        offsets / word_ids: per token, char offsets in the caption and word index (see :class:`TextBatch`).
    """

    tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    features: torch.Tensor
    offsets: list[tuple[int, int]]
    word_ids: list[Optional[int]]


class TextFeatureCache:
    """LRU cache of :class:`EncodedText` for one model and tokenizer.

    Attributes:
        encodes: how many captions were tokenized and text-encoded (cache misses).
    """

    def __init__(self, model, tokenizer, *, size: int = 64) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.model, self.tokenizer, self.size = model, tokenizer, size
        self._entries: OrderedDict[tuple, EncodedText] = OrderedDict()
        self.encodes = 0

    def _key(self, caption: str, device) -> tuple:
        dev = torch.device(device)
        dtype = torch.get_autocast_dtype(dev.type) if torch.is_autocast_enabled(dev.type) else None
        versions = tuple(p._version for p in self.model.bert.parameters()) + \
            tuple(p._version for p in self.model.feat_map.parameters())
        return caption, str(dev), dtype, versions

    def get(self, caption: str, device) -> EncodedText:
        key = self._key(caption, device)
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            return hit
        tb = tokenize(self.tokenizer, [caption])
        tensors = tuple(t.to(device) for t in (tb.input_ids, tb.attention_mask, tb.text_self_attention_masks,
                                                tb.position_ids))
        with torch.no_grad():
            features = self.model.encode_text(tensors[0], tensors[2], tensors[3])
        entry = EncodedText(tensors=tensors, features=features, offsets=tb.offsets[0], word_ids=tb.word_ids[0])
        self.encodes += 1
        self._entries[key] = entry
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return entry
