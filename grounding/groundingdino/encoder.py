"""Feature enhancer: per layer, bi-directional image-text fusion -> text self-attention ->
deformable image self-attention (official order and numerics, batch-first, per-sample text masks)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .deformable_attention import MSDeformAttn


def sine_embed_1d(pos: torch.Tensor, num_feats: int, temperature: float = 10000.0) -> torch.Tensor:
    """[...] positions -> [..., num_feats] (scale 2*pi, sin on even / cos on odd features, interleaved)."""
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=pos.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    x = pos[..., None] * (2 * math.pi) / dim_t
    return torch.stack((x[..., 0::2].sin(), x[..., 1::2].cos()), dim=-1).flatten(-2)


class BiMultiHeadAttention(nn.Module):
    def __init__(self, *, v_dim: int, l_dim: int, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError("embed_dim must be divisible by num_heads")
        self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.v_proj = nn.Linear(v_dim, embed_dim)
        self.l_proj = nn.Linear(l_dim, embed_dim)
        self.values_v_proj = nn.Linear(v_dim, embed_dim)
        self.values_l_proj = nn.Linear(l_dim, embed_dim)
        self.out_v_proj = nn.Linear(embed_dim, v_dim)
        self.out_l_proj = nn.Linear(embed_dim, l_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2).reshape(b * self.num_heads, n, self.head_dim)

    def forward(self, v, l, mask_v=None, mask_l=None):
        """v [B,Nv,Dv], l [B,Nl,Dl]; masks bool, True = padding. Returns (delta_v, delta_l)."""
        b, nv, _ = v.shape
        nl = l.shape[1]
        q = self._heads(self.v_proj(v) * self.scale)
        k = self._heads(self.l_proj(l))
        vv = self._heads(self.values_v_proj(v))
        vl = self._heads(self.values_l_proj(l))
        w = torch.bmm(q, k.transpose(1, 2))
        w = w - w.max()
        w = w.clamp(min=-50000, max=50000)
        wt = w.transpose(1, 2)
        wl = (wt - wt.max(-1, keepdim=True)[0]).clamp(min=-50000, max=50000)
        if mask_v is not None:
            wl = wl.masked_fill(mask_v[:, None, None, :].expand(b, self.num_heads, 1, nv).flatten(0, 1), float("-inf"))
        pl = wl.softmax(-1)
        if mask_l is not None:
            w = w.masked_fill(mask_l[:, None, None, :].expand(b, self.num_heads, 1, nl).flatten(0, 1), float("-inf"))
        pv = w.softmax(-1)
        ov = torch.bmm(pv, vl).view(b, self.num_heads, nv, self.head_dim).transpose(1, 2).reshape(b, nv, -1)
        ol = torch.bmm(pl, vv).view(b, self.num_heads, nl, self.head_dim).transpose(1, 2).reshape(b, nl, -1)
        return self.out_v_proj(ov), self.out_l_proj(ol)


class BiAttentionBlock(nn.Module):
    def __init__(self, *, v_dim: int, l_dim: int, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        self.layer_norm_v = nn.LayerNorm(v_dim)
        self.layer_norm_l = nn.LayerNorm(l_dim)
        self.attn = BiMultiHeadAttention(v_dim=v_dim, l_dim=l_dim, embed_dim=embed_dim, num_heads=num_heads)
        self.gamma_v = nn.Parameter(1e-4 * torch.ones(v_dim))
        self.gamma_l = nn.Parameter(1e-4 * torch.ones(l_dim))

    def forward(self, v, l, mask_v=None, mask_l=None):
        v = self.layer_norm_v(v)
        l = self.layer_norm_l(l)
        dv, dl = self.attn(v, l, mask_v, mask_l)
        return v + self.gamma_v * dv, l + self.gamma_l * dl


class TextEnhancerLayer(nn.Module):
    """Post-norm transformer encoder layer on text (attention mask per sample: batch-major heads)."""

    def __init__(self, *, d_model: int, num_heads: int, dim_feedforward: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x, pos, block_mask):
        """x, pos [B,T,D]; block_mask bool [B,T,T], True = not allowed."""
        q = x + pos
        am = block_mask.repeat_interleave(self.num_heads, dim=0)
        x = self.norm1(x + self.self_attn(q, q, x, attn_mask=am, need_weights=False)[0])
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class DeformableEncoderLayer(nn.Module):
    def __init__(self, *, d_model: int, num_heads: int, dim_feedforward: int, num_levels: int, num_points: int) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(embed_dim=d_model, num_heads=num_heads, num_levels=num_levels, num_points=num_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src, pos, reference_points, spatial_shapes, key_padding_mask):
        src = self.norm1(src + self.self_attn(src + pos, reference_points, src, spatial_shapes, key_padding_mask))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


def encoder_reference_points(spatial_shapes: torch.Tensor, valid_ratios: torch.Tensor) -> torch.Tensor:
    """Pixel-centre reference points [B, S, L, 2] (x, y) as the official encoder computes them."""
    refs = []
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        ry, rx = torch.meshgrid(torch.linspace(0.5, h - 0.5, h, dtype=torch.float32, device=valid_ratios.device),
                                torch.linspace(0.5, w - 0.5, w, dtype=torch.float32, device=valid_ratios.device),
                                indexing="ij")
        ry = ry.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
        rx = rx.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
        refs.append(torch.stack((rx, ry), -1))
    ref = torch.cat(refs, 1)
    return ref[:, :, None] * valid_ratios[:, None]


class FeatureEnhancer(nn.Module):
    """Official ``TransformerEncoder`` with text enhancer and fusion layers (keys layers/text_layers/fusion_layers)."""

    def __init__(self, *, num_layers: int, d_model: int = 256, num_heads: int = 8, dim_feedforward: int = 2048,
                 num_levels: int = 4, num_points: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(d_model=d_model, num_heads=num_heads, dim_feedforward=dim_feedforward,
                                   num_levels=num_levels, num_points=num_points) for _ in range(num_layers))
        self.text_layers = nn.ModuleList(
            TextEnhancerLayer(d_model=d_model, num_heads=num_heads // 2, dim_feedforward=dim_feedforward // 2)
            for _ in range(num_layers))
        self.fusion_layers = nn.ModuleList(
            BiAttentionBlock(v_dim=d_model, l_dim=d_model, embed_dim=dim_feedforward // 2, num_heads=num_heads // 2)
            for _ in range(num_layers))

    def forward(self, src, pos, spatial_shapes, valid_ratios, key_padding_mask, text, text_padding_mask,
                text_position_ids, text_block_mask):
        """src/pos [B,S,D]; key_padding_mask [B,S] (True = pad); text [B,T,D]; text_padding_mask [B,T]
        (True = pad); text_block_mask [B,T,T] (True = may attend). Returns (memory [B,S,D], text [B,T,D])."""
        ref = encoder_reference_points(spatial_shapes, valid_ratios)
        pos_text = sine_embed_1d(text_position_ids.float(), text.shape[-1])
        not_allowed = ~text_block_mask
        for layer, text_layer, fusion in zip(self.layers, self.text_layers, self.fusion_layers):
            src, text = fusion(src, text, key_padding_mask, text_padding_mask)
            text = text_layer(text, pos_text, not_allowed)
            src = layer(src, pos, ref, spatial_shapes, key_padding_mask)
        return src, text
