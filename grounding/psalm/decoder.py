"""PSALM's mask decoder (``MultiScaleMaskedTransformerDecoderForOPTPreTrain.forward_woconcat``), official key names.

Mask2Former's masked-attention decoder whose initial queries come from the language model. Before every layer
and after the last, the heads predict from ``decoder_norm(x)``: mask logits ``mask_embed(x) . mask_features``,
and, when the prompt gives them, ``SEG_proj(x) . SEG_embedding`` (referring), ``CLASS_proj(x) . class
embeddings`` (category list) and ``region embeddings . REGION_proj(x)`` (visual prompts). Layer ``i`` attends to
level ``i mod 3`` (strides 32, 16, 8), masked where the previous prediction's sigmoid is below 0.5.

transformers' Mask2Former decoder is not used: it starts from learned query features, ends in a fixed class head
and has its own module layout; PSALM's is seeded by the LLM and scores against prompt embeddings. The attention
is torch's ``nn.MultiheadAttention``, as in the official code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .pixel_decoder import sine_position_embedding


class MLP(nn.Module):
    """``layers``: Linear layers with ReLU between them."""

    def __init__(self, *, in_dim: int, hidden: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [out_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class AttentionLayer(nn.Module):
    """Cross-attention (``multihead_attn``) or self-attention (``self_attn``) + residual + LayerNorm
    (post-norm; ``pre_norm``: the norm before)."""

    def __init__(self, *, dim: int, num_heads: int, cross: bool, pre_norm: bool) -> None:
        super().__init__()
        attn = nn.MultiheadAttention(dim, num_heads)
        self.cross, self.pre_norm = cross, pre_norm
        if cross:
            self.multihead_attn = attn
        else:
            self.self_attn = attn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, query_pos: torch.Tensor, memory: Optional[torch.Tensor] = None,
                pos: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sequence-first: ``x [Q, B, D]``; ``memory [HW, B, D]``; ``mask [B*heads, Q, HW]`` (True = blocked)."""
        y = self.norm(x) if self.pre_norm else x
        if self.cross:
            out = self.multihead_attn(y + query_pos, memory + pos, memory, attn_mask=mask, need_weights=False)[0]
        else:
            out = self.self_attn(y + query_pos, y + query_pos, y, need_weights=False)[0]
        return x + out if self.pre_norm else self.norm(x + out)


class FFNLayer(nn.Module):
    def __init__(self, *, dim: int, ffn_dim: int, pre_norm: bool) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.pre_norm = pre_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            return x + self.linear2(F.relu(self.linear1(self.norm(x))))
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


@dataclass(frozen=True)
class LayerPrediction:
    """The heads' outputs at one decoder stage (batch size 1; ``None`` where the prompt has no such input).

    Attributes:
        mask_logits: ``[1, Q, S/4, S/4]``.
        seg_logits: ``[1, Q, 1]`` query vs the pooled ``<refer>`` embedding.
        class_logits: ``[1, Q, C]`` query vs each class (the last class is ``background``).
        region_logits: ``[K, Q]`` each region vs each query.
    """

    mask_logits: torch.Tensor
    seg_logits: Optional[torch.Tensor] = None
    class_logits: Optional[torch.Tensor] = None
    region_logits: Optional[torch.Tensor] = None


class MaskDecoder(nn.Module):
    """``predictor``: queries from the LLM + pixel features -> one :class:`LayerPrediction` per stage
    (``decoder_layers + 1``; the last one is the model's output)."""

    def __init__(self, *, in_channels: int, dim: int, num_queries: int, num_heads: int, ffn_dim: int,
                 num_layers: int, mask_dim: int, pre_norm: bool = False, seg_proj: bool = True,
                 seg_norm: bool = False) -> None:
        super().__init__()
        self.dim, self.num_heads, self.seg_proj, self.seg_norm = dim, num_heads, seg_proj, seg_norm
        self.transformer_self_attention_layers = nn.ModuleList(
            AttentionLayer(dim=dim, num_heads=num_heads, cross=False, pre_norm=pre_norm) for _ in range(num_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            AttentionLayer(dim=dim, num_heads=num_heads, cross=True, pre_norm=pre_norm) for _ in range(num_layers))
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(dim=dim, ffn_dim=ffn_dim, pre_norm=pre_norm) for _ in range(num_layers))
        self.decoder_norm = nn.LayerNorm(dim)
        if seg_norm:
            self.seg_proj_after_norm = MLP(in_dim=dim, hidden=dim, out_dim=dim, num_layers=2)
            self.class_name_proj_after_norm = MLP(in_dim=dim, hidden=dim, out_dim=dim, num_layers=2)
            self.SEG_norm = nn.LayerNorm(dim)
            self.class_name_norm = nn.LayerNorm(dim)
        self.query_embed = nn.Embedding(num_queries, dim)
        self.level_embed = nn.Embedding(3, dim)
        self.input_proj = nn.ModuleList(nn.Conv2d(in_channels, dim, 1) if in_channels != dim else nn.Identity()
                                        for _ in range(3))
        self.mask_embed = MLP(in_dim=dim, hidden=dim, out_dim=mask_dim, num_layers=3)
        self.SEG_proj = MLP(in_dim=dim, hidden=dim, out_dim=dim, num_layers=2)
        self.CLASS_proj = MLP(in_dim=dim, hidden=dim, out_dim=dim, num_layers=2)
        self.REGION_proj = MLP(in_dim=dim, hidden=dim, out_dim=dim, num_layers=2)

    def heads(self, x: torch.Tensor, mask_features: torch.Tensor, seg_embedding: Optional[torch.Tensor],
              class_embedding: Optional[torch.Tensor], region_embedding: Optional[torch.Tensor]) -> LayerPrediction:
        out = self.decoder_norm(x).transpose(0, 1)  # [B, Q, D]
        seg = cls = region = None
        if seg_embedding is not None:
            q = self.SEG_proj(out) if self.seg_proj else out
            e = self.seg_proj_after_norm(self.SEG_norm(seg_embedding)) if self.seg_norm else seg_embedding
            seg = torch.einsum("bld,bcd->blc", q, e)
        if class_embedding is not None:
            q = self.CLASS_proj(out) if self.seg_proj else out
            e = self.class_name_proj_after_norm(self.class_name_norm(class_embedding)) if self.seg_norm \
                else class_embedding
            cls = torch.einsum("bld,bcd->blc", q, e)
        if region_embedding is not None:
            q = self.REGION_proj(out) if self.seg_proj else out
            region = torch.einsum("kd,ld->kl", region_embedding, q[0])
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(out), mask_features)
        return LayerPrediction(mask_logits=masks, seg_logits=seg, class_logits=cls, region_logits=region)

    def attention_mask(self, mask_logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``[B*heads, Q, h*w]`` True where a query may not attend (sigmoid of its resized mask < 0.5); a query
        blocked everywhere is unblocked."""
        m = F.interpolate(mask_logits.float(), size=size, mode="bilinear", align_corners=False)
        m = (m.sigmoid().flatten(2) < 0.5).repeat_interleave(self.num_heads, dim=0)
        m[m.all(-1)] = False
        return m

    def forward(self, multi_scale: Sequence[torch.Tensor], mask_features: torch.Tensor, queries: torch.Tensor,
                seg_embedding: Optional[torch.Tensor] = None, class_embedding: Optional[torch.Tensor] = None,
                region_embedding: Optional[torch.Tensor] = None) -> list[LayerPrediction]:
        """``multi_scale``: 3 maps ``[1, C, h, w]``; ``mask_features [1, mask_dim, H4, W4]``; ``queries [1, Q, D]``
        (projected LLM states); ``seg_embedding [1, 1, D]``; ``class_embedding [1, C, D]``; ``region_embedding
        [K, D]``."""
        if queries.shape[0] != 1:
            raise ValueError("the PSALM decoder runs one image at a time (batch size 1)")
        src, pos, sizes = [], [], []
        for i, x in enumerate(multi_scale):
            b, _, h, w = x.shape
            sizes.append((h, w))
            pe = sine_position_embedding(b, h, w, self.dim // 2, device=x.device)
            pos.append(pe.to(x.dtype).flatten(2).permute(2, 0, 1))
            s = self.input_proj[i](x).flatten(2) + self.level_embed.weight[i][None, :, None]
            src.append(s.permute(2, 0, 1))
        query_pos = self.query_embed.weight.unsqueeze(1).expand(-1, queries.shape[0], -1)
        x = queries.transpose(0, 1)
        embeds = (seg_embedding, class_embedding, region_embedding)
        preds = [self.heads(x, mask_features, *embeds)]
        for i in range(len(self.transformer_ffn_layers)):
            lvl = i % 3
            mask = self.attention_mask(preds[-1].mask_logits, sizes[lvl])
            x = self.transformer_cross_attention_layers[i](x, query_pos, src[lvl], pos[lvl], mask)
            x = self.transformer_self_attention_layers[i](x, query_pos)
            x = self.transformer_ffn_layers[i](x)
            preds.append(self.heads(x, mask_features, *embeds))
        return preds
