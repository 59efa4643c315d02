"""BERT text encoder built from a config (no download): transformers' BertModel run the way the
official ``BertModelWarper`` runs it (3-D sub-sentence attention mask, sub-sentence position ids)."""
from __future__ import annotations

import math

import torch
from torch import nn

#: the attention kernel of :class:`TextEncoder`, registered with transformers' ``AttentionInterface``
ATTENTION = "groundingdino_bert_eager"


def official_eager_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: torch.Tensor | None, scaling: float | None = None,
                             dropout: float = 0.0, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT eager self-attention in the arithmetic the official code ran (transformers 4's
    ``BertSelfAttention``): scores divided by sqrt(head size), then the additive mask, softmax, dropout.

    transformers 5's eager kernel multiplies by ``head_size ** -0.5`` instead, which rounds differently
    when the head size is not a power of 4 (e.g. 32); ``scaling`` is that factor and is not used here.
    q/k/v ``[B, heads, T, head]`` -> (context ``[B, T, heads, head]``, probabilities).
    """
    scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(query.shape[-1])
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = nn.functional.dropout(nn.functional.softmax(scores, dim=-1), p=dropout, training=module.training)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs


class TextEncoder(nn.Module):
    """Wraps ``transformers.BertModel`` built from a ``BertConfig`` dict (weights come from the checkpoint).

    Key names under this module equal the official ``bert.*`` keys (embeddings, encoder; the unused pooler is left out and dropped by the converters);
    ``embeddings.position_ids`` is a non-persistent buffer (old checkpoints' copy is dropped by the converter).
    """

    def __init__(self, *, config: dict) -> None:
        super().__init__()
        from transformers import AttentionInterface, BertConfig, BertModel

        AttentionInterface.register(ATTENTION, official_eager_attention)
        kwargs = {k: v for k, v in config.items()
                  if k not in ("architectures", "transformers_version", "attn_implementation", "_attn_implementation")}
        cfg = BertConfig(**kwargs, attn_implementation=ATTENTION)
        model = BertModel(cfg, add_pooling_layer=False)
        if model.config._attn_implementation != ATTENTION:
            raise ValueError(f"BERT text encoder: transformers chose {model.config._attn_implementation!r} "
                             f"attention instead of {ATTENTION!r}")
        self.embeddings = model.embeddings
        self.encoder = model.encoder
        self.hidden_size = cfg.hidden_size

    def forward(self, input_ids: torch.Tensor, self_attention_mask: torch.Tensor, position_ids: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids/position_ids [B,T]; self_attention_mask bool [B,T,T] (True = may attend).
        Returns last_hidden_state [B,T,hidden]."""
        if self_attention_mask.ndim != 3:
            raise ValueError("self_attention_mask must be [B,T,T]")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        emb = self.embeddings(input_ids=input_ids, position_ids=position_ids, token_type_ids=token_type_ids)
        ext = (1.0 - self_attention_mask[:, None].to(emb.dtype)) * torch.finfo(emb.dtype).min
        h = emb
        for layer in self.encoder.layer:
            out = layer(h, attention_mask=ext)
            h = out[0] if isinstance(out, tuple) else out
        return h
