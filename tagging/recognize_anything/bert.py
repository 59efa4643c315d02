"""The BERT text encoder and decoder of the recognize-anything captioning branch (official key names).

Written from the arithmetic of the official ``ram/models/bert.py`` (BLIP's BERT, run by transformers 4), see
``shared/parity/tag2text/NOTES.md`` §1: word + learned absolute position embeddings, LayerNorm (no token
types); post-LN layers of self-attention (padding mask ``(1 - m) * -10000``, or causal in the decoder, with
a key/value cache), cross-attention to encoder states, and a GELU FFN. The decoder's LM head is dense, GELU,
LayerNorm, then a projection tied to the word embeddings plus a bias.

The cache is this module's own: ``past`` is one ``(key, value)`` pair ``[N, heads, T, head_dim]`` per layer,
and cross-attention keys/values are computed once per generation (:meth:`TextModel.cross_key_values`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from .tagging_head import AttentionBlock, DenseResidualNorm, Intermediate, activation

#: ``(key, value)`` per layer, each ``[N, heads, T, head_dim]``
KeyValues = Sequence[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True, kw_only=True)
class BertSize:
    """Sizes of a BERT text model (the official ``med_config.json``: 30524 / 768 / 12 / 12 / 3072)."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_official(cls, config: Mapping) -> "BertSize":
        """From an official BERT JSON config (``med_config.json``)."""
        try:
            return cls(vocab_size=int(config["vocab_size"]), hidden_size=int(config["hidden_size"]),
                       num_layers=int(config["num_hidden_layers"]), num_heads=int(config["num_attention_heads"]),
                       intermediate_size=int(config["intermediate_size"]),
                       max_position_embeddings=int(config.get("max_position_embeddings", 512)),
                       layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
                       hidden_act=str(config.get("hidden_act", "gelu")))
        except (KeyError, TypeError) as e:
            raise ValueError(f"official BERT config lacks {e}") from None


def padding_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[N, T]`` (1 = token, 0 = padding) -> additive ``[N, 1, 1, T]``: ``(1 - m) * -10000`` as the official."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * -10000.0


def causal_mask(length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Additive ``[1, 1, T, T]``: ``-10000`` where a position would see a later one."""
    seq = torch.arange(length, device=device)
    allowed = (seq[None, :] <= seq[:, None]).to(dtype)
    return ((1.0 - allowed) * -10000.0)[None, None]


class Embeddings(nn.Module):
    """``LayerNorm(word_embeddings(ids) + position_embeddings(past .. past + T))``."""

    def __init__(self, *, size: BertSize) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(size.vocab_size, size.hidden_size)
        self.position_embeddings = nn.Embedding(size.max_position_embeddings, size.hidden_size)
        self.LayerNorm = nn.LayerNorm(size.hidden_size, eps=size.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, past_length: int = 0) -> torch.Tensor:
        length = input_ids.shape[1]
        if past_length + length > self.position_embeddings.num_embeddings:
            raise ValueError(f"{past_length + length} positions exceed the model's "
                             f"{self.position_embeddings.num_embeddings}")
        positions = torch.arange(past_length, past_length + length, device=input_ids.device)
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions)[None])


class TextLayer(nn.Module):
    """Self-attention (cached), cross-attention, FFN; each followed by residual + LayerNorm."""

    def __init__(self, *, size: BertSize, encoder_width: int) -> None:
        super().__init__()
        h, eps = size.hidden_size, size.layer_norm_eps
        self.attention = AttentionBlock(hidden_size=h, kv_width=h, num_heads=size.num_heads, eps=eps)
        self.crossattention = AttentionBlock(hidden_size=h, kv_width=encoder_width, num_heads=size.num_heads,
                                             eps=eps)
        self.intermediate = Intermediate(hidden_size=h, intermediate_size=size.intermediate_size,
                                         hidden_act=size.hidden_act)
        self.output = DenseResidualNorm(in_features=size.intermediate_size, hidden_size=h, eps=eps)

    def forward(self, x: torch.Tensor, *, self_mask: Optional[torch.Tensor],
                cross_kv: tuple[torch.Tensor, torch.Tensor], cross_mask: Optional[torch.Tensor] = None,
                past: Optional[tuple[torch.Tensor, torch.Tensor]] = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x [N, T, hidden]`` -> (``[N, T, hidden]``, this layer's self-attention keys/values incl. ``past``)."""
        att = self.attention.self
        key, value = att.key_value(x)
        if past is not None:
            key, value = torch.cat([past[0], key], dim=2), torch.cat([past[1], value], dim=2)
        h = self.attention.output(att.attend(x, key, value, self_mask), x)
        h = self.crossattention.output(self.crossattention.self.attend(h, *cross_kv, cross_mask), h)
        return self.output(self.intermediate(h), h), (key, value)


class TextEncoderStack(nn.Module):
    def __init__(self, *, size: BertSize, encoder_width: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(TextLayer(size=size, encoder_width=encoder_width)
                                   for _ in range(size.num_layers))


class TextModel(nn.Module):
    """BERT with cross-attention (official ``BertModel``, ``mode='multimodal'``, no pooler): the tag encoder,
    and the body (``bert``) of the text decoder."""

    def __init__(self, *, size: BertSize, encoder_width: int) -> None:
        super().__init__()
        self.size = size
        self.embeddings = Embeddings(size=size)
        self.encoder = TextEncoderStack(size=size, encoder_width=encoder_width)

    def cross_key_values(self, states: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's cross-attention keys/values of encoder ``states [N, L, encoder_width]``."""
        return [layer.crossattention.self.key_value(states) for layer in self.encoder.layer]

    def forward(self, input_ids: torch.Tensor, *, self_mask: Optional[torch.Tensor], cross_kv: KeyValues,
                cross_mask: Optional[torch.Tensor] = None, past: Optional[KeyValues] = None
                ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """``input_ids [N, T]`` -> (hidden states ``[N, T, hidden]``, keys/values for the next step).

        ``self_mask``/``cross_mask``: additive, broadcastable to ``[N, heads, T, T_total]`` / ``[.., L]``."""
        x = self.embeddings(input_ids, past_length=0 if past is None else past[0][0].shape[2])
        present = []
        for i, layer in enumerate(self.encoder.layer):
            x, kv = layer(x, self_mask=self_mask, cross_kv=cross_kv[i], cross_mask=cross_mask,
                          past=None if past is None else past[i])
            present.append(kv)
        return x, present


class PredictionTransform(nn.Module):
    def __init__(self, *, size: BertSize) -> None:
        super().__init__()
        self.act = activation(size.hidden_act)
        self.dense = nn.Linear(size.hidden_size, size.hidden_size)
        self.LayerNorm = nn.LayerNorm(size.hidden_size, eps=size.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class LMPrediction(nn.Module):
    """``decoder(transform(x))``; ``decoder.bias`` is ``bias`` (and the decoder's weight is tied by the owner)."""

    def __init__(self, *, size: BertSize) -> None:
        super().__init__()
        self.transform = PredictionTransform(size=size)
        self.bias = nn.Parameter(torch.zeros(size.vocab_size))
        self.decoder = nn.Linear(size.hidden_size, size.vocab_size, bias=False)
        self.decoder.bias = self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(x))


class LMHead(nn.Module):
    def __init__(self, *, size: BertSize) -> None:
        super().__init__()
        self.predictions = LMPrediction(size=size)


class TextDecoder(nn.Module):
    """Causal BERT language model with cross-attention (official ``BertLMHeadModel``); the LM projection is
    tied to the word embeddings."""

    def __init__(self, *, size: BertSize, encoder_width: int) -> None:
        super().__init__()
        self.bert = TextModel(size=size, encoder_width=encoder_width)
        self.cls = LMHead(size=size)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def cross_key_values(self, states: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self.bert.cross_key_values(states)

    def forward(self, input_ids: torch.Tensor, *, cross_kv: KeyValues, past: Optional[KeyValues] = None
                ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """``input_ids [N, T]`` (the new tokens; earlier ones in ``past``) -> (logits ``[N, T, vocab]``, cache).

        Causal self-attention over ``past`` + the new tokens; cross-attention to every encoder position
        (the official decoder runs with ``encoder_attention_mask=None``: padding included)."""
        length = input_ids.shape[1]
        mask = None
        if length > 1:
            if past is not None:
                raise ValueError("several new tokens with a cache: give the cache's tokens one at a time")
            mask = causal_mask(length, self.bert.embeddings.LayerNorm.weight.dtype, input_ids.device)
        hidden, present = self.bert(input_ids, self_mask=mask, cross_kv=cross_kv, past=past)
        return self.cls.predictions(hidden), present


#: the tagging-head blocks whose parameters the official model shares with the tag encoder's first layers
TIED_HEAD_BLOCKS = ("crossattention.self.query", "crossattention.self.key", "crossattention.self.value",
                    "crossattention.output.dense", "crossattention.output.LayerNorm", "intermediate.dense",
                    "output.dense", "output.LayerNorm")


def tie_tagging_head(text_layers: Sequence[nn.Module], head_layers: Sequence[nn.Module]) -> None:
    """Make ``text_layers[i]``'s :data:`TIED_HEAD_BLOCKS` use ``head_layers[i]``'s parameters (the official
    ``tie_encoder_decoder_weights(tag_encoder, tagging_head)``): the same tensors, each model keeping its own
    head count and LayerNorm eps."""
    if len(head_layers) > len(text_layers):
        raise ValueError(f"a {len(head_layers)}-layer tagging head cannot share the first layers of a "
                         f"{len(text_layers)}-layer text encoder")
    for text, head in zip(text_layers, head_layers):
        for path in TIED_HEAD_BLOCKS:
            t, h = text.get_submodule(path), head.get_submodule(path)
            for name in ("weight", "bias"):
                if getattr(t, name).shape != getattr(h, name).shape:
                    raise ValueError(f"cannot tie {path}.{name}: text encoder {tuple(getattr(t, name).shape)} vs "
                                     f"tagging head {tuple(getattr(h, name).shape)}")
                setattr(t, name, getattr(h, name))
