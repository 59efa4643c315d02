"""BERT text encoder built from a config (no download): transformers' BertModel run the way the
official ``BertModelWarper`` runs it (3-D sub-sentence attention mask, sub-sentence position ids)."""
from __future__ import annotations

import torch
from torch import nn


class TextEncoder(nn.Module):
    """Wraps ``transformers.BertModel`` built from a ``BertConfig`` dict (weights come from the checkpoint).

    Key names under this module equal the official ``bert.*`` keys (embeddings, encoder; the unused pooler is left out and dropped by the converters);
    ``embeddings.position_ids`` is a non-persistent buffer (old checkpoints' copy is dropped by the converter).
    """

    def __init__(self, *, config: dict) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        kwargs = {k: v for k, v in config.items()
                  if k not in ("architectures", "transformers_version", "attn_implementation", "_attn_implementation")}
        # eager attention adds the additive [B,1,T,T] mask to the scores, as the official BertModel run does
        cfg = BertConfig(**kwargs, attn_implementation="eager")
        model = BertModel(cfg, add_pooling_layer=False)
        if model.config._attn_implementation != "eager":
            raise ValueError(f"BERT text encoder: transformers chose {model.config._attn_implementation!r} "
                             "attention instead of 'eager'")
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
