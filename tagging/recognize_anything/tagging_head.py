"""The tagging head of RAM, RAM++ and Tag2Text, and the BERT blocks it is made of (official key names).

The head is a BERT-layout decoder with cross-attention only. Each layer: cross-attention (queries = tag
embeddings, keys/values = image tokens), output dense, residual + LayerNorm (post-LN), then FFN (BERT
``hidden_act``; the official ``"gelu"`` is the erf GELU) with residual + LayerNorm. There is no
self-attention between tags and no embeddings/position layer, so every tag's output depends only
on its own query and the image: tags can be split or concatenated freely.

:class:`Attention`, :class:`AttentionBlock`, :class:`Intermediate` and :class:`DenseResidualNorm` are
also the blocks of Tag2Text's text encoder and decoder (``bert.py``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

#: BERT ``hidden_act`` names (as ``transformers.activations.ACT2FN``) -> function
ACTIVATIONS = {
    "gelu": F.gelu,
    "relu": F.relu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "swish": F.silu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


def activation(name: str):
    """The function of a BERT ``hidden_act`` name; ``ValueError`` for an unknown one."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unsupported BERT hidden_act {name!r}; choose from {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class Attention(nn.Module):
    """BERT ``query``/``key``/``value`` projections and scaled dot-product attention.

    The arithmetic of the official (transformers 4) ``BertSelfAttention``: ``q @ kᵀ`` divided by
    ``sqrt(head_dim)``, plus an additive mask, softmax, times ``v``.
    """

    def __init__(self, *, hidden_size: int, kv_width: int, num_heads: int) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(kv_width, hidden_size)
        self.value = nn.Linear(kv_width, hidden_size)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, hidden] -> [B, heads, N, head_dim]``."""
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def key_value(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``[B, heads, L, head_dim]`` of ``states [B, L, kv_width]``."""
        return self.heads(self.key(states)), self.heads(self.value(states))

    def attend(self, queries: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``queries [B, T, hidden]`` over ``key``/``value`` ``[B, heads, L, head_dim]`` -> ``[B, T, hidden]``.

        ``mask``: additive, broadcastable to ``[B, heads, T, L]`` (``None`` = attend everywhere)."""
        q = self.heads(self.query(queries))
        scores = (q @ key.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        ctx = scores.softmax(dim=-1) @ value
        b, _, n, _ = ctx.shape
        return ctx.permute(0, 2, 1, 3).reshape(b, n, -1)

    def forward(self, queries: torch.Tensor, states: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.attend(queries, *self.key_value(states), mask)


class DenseResidualNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)`` (BERT's ``*Output`` blocks)."""

    def __init__(self, *, in_features: int, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class AttentionBlock(nn.Module):
    """BERT ``attention``/``crossattention``: :class:`Attention` (``self``) then :class:`DenseResidualNorm`."""

    def __init__(self, *, hidden_size: int, kv_width: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.self = Attention(hidden_size=hidden_size, kv_width=kv_width, num_heads=num_heads)
        self.output = DenseResidualNorm(in_features=hidden_size, hidden_size=hidden_size, eps=eps)

    def forward(self, queries: torch.Tensor, states: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.output(self.self(queries, states, mask), queries)


class Intermediate(nn.Module):
    def __init__(self, *, hidden_size: int, intermediate_size: int, hidden_act: str = "gelu") -> None:
        super().__init__()
        self.act = activation(hidden_act)
        self.dense = nn.Linear(hidden_size, intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class DecoderLayer(nn.Module):
    """One tagging-head layer: ``crossattention``, ``intermediate``, ``output`` (no self-attention)."""

    def __init__(self, *, hidden_size: int, encoder_width: int, num_heads: int,
                 intermediate_size: int, eps: float, hidden_act: str = "gelu") -> None:
        super().__init__()
        self.crossattention = AttentionBlock(hidden_size=hidden_size, kv_width=encoder_width,
                                             num_heads=num_heads, eps=eps)
        self.intermediate = Intermediate(hidden_size=hidden_size, intermediate_size=intermediate_size,
                                         hidden_act=hidden_act)
        self.output = DenseResidualNorm(in_features=intermediate_size, hidden_size=hidden_size, eps=eps)

    def forward(self, queries: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = self.crossattention(queries, image)
        return self.output(self.intermediate(x), x)


class DecoderStack(nn.Module):
    def __init__(self, *, num_layers: int, **layer_kwargs) -> None:
        super().__init__()
        self.layer = nn.ModuleList(DecoderLayer(**layer_kwargs) for _ in range(num_layers))


class TaggingDecoder(nn.Module):
    """Queries ``[B, K, hidden]`` attend to image tokens ``[B, L, encoder_width]`` -> ``[B, K, hidden]``."""

    def __init__(self, *, hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int,
                 encoder_width: int = 512, layer_norm_eps: float = 1e-12, hidden_act: str = "gelu") -> None:
        super().__init__()
        self.encoder = DecoderStack(num_layers=num_layers, hidden_size=hidden_size,
                                    encoder_width=encoder_width, num_heads=num_heads,
                                    intermediate_size=intermediate_size, eps=layer_norm_eps,
                                    hidden_act=hidden_act)

    def forward(self, queries: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = queries
        for layer in self.encoder.layer:
            x = layer(x, image)
        return x
