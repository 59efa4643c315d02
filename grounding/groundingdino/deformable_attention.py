"""Multi-scale deformable attention in pure PyTorch (numerically the official grid_sample fallback).

Key names follow the official ``MultiScaleDeformableAttention`` (sampling_offsets, attention_weights,
value_proj, output_proj) so checkpoints load unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def ms_deform_attn(value: torch.Tensor, spatial_shapes: torch.Tensor, sampling_locations: torch.Tensor,
                   attention_weights: torch.Tensor) -> torch.Tensor:
    """Core sampling.

    Args:
        value: [B, S, H, Dh] per-head values of all levels, flattened level by level.
        spatial_shapes: int64 [L, 2] (h, w) of each level.
        sampling_locations: [B, Q, H, L, P, 2] (x, y) in [0, 1] of the (padded) level map.
        attention_weights: [B, Q, H, L, P], softmaxed over L*P.
    Returns:
        [B, Q, H*Dh].
    Bilinear sampling with zero padding and align_corners=False; computed in float32 (bf16 safe).
    """
    out_dtype = value.dtype
    value = value.float()
    sampling_locations = sampling_locations.float()
    attention_weights = attention_weights.float()
    b, _, nh, dh = value.shape
    _, q, _, nl, npnt, _ = sampling_locations.shape
    sizes = [int(h) * int(w) for h, w in spatial_shapes.tolist()]
    values = value.split(sizes, dim=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        v = values[lvl].flatten(2).transpose(1, 2).reshape(b * nh, dh, int(h), int(w))
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)  # [B*H, Q, P, 2]
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    aw = attention_weights.transpose(1, 2).reshape(b * nh, 1, q, nl * npnt)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * aw).sum(-1).view(b, nh * dh, q)
    return out.transpose(1, 2).contiguous().to(out_dtype)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention (batch-first)."""

    def __init__(self, *, embed_dim: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 4) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.num_levels, self.num_points = embed_dim, num_heads, num_levels, num_points
        self.sampling_offsets = nn.Linear(embed_dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        for i in range(self.num_points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(self, query: torch.Tensor, reference_points: torch.Tensor, value: torch.Tensor,
                spatial_shapes: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """query [B,Q,D]; reference_points [B,Q,L,2] (x,y) or [B,Q,L,4] (cx,cy,w,h), normalised;
        value [B,S,D]; key_padding_mask bool [B,S] (True = padding). Returns [B,Q,D]."""
        b, q, _ = query.shape
        s = value.shape[1]
        v = self.value_proj(value)
        if key_padding_mask is not None:
            v = v.masked_fill(key_padding_mask[..., None], 0.0)
        v = v.view(b, s, self.num_heads, -1)
        nh, nl, npnt = self.num_heads, self.num_levels, self.num_points
        off = self.sampling_offsets(query).view(b, q, nh, nl, npnt, 2)
        aw = self.attention_weights(query).view(b, q, nh, nl * npnt).softmax(-1).view(b, q, nh, nl, npnt)
        if reference_points.shape[-1] == 2:
            norm = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1).to(off.dtype)
            loc = reference_points[:, :, None, :, None, :] + off / norm[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            loc = (reference_points[:, :, None, :, None, :2]
                   + off / npnt * reference_points[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError(f"reference_points last dim must be 2 or 4, got {reference_points.shape[-1]}")
        return self.output_proj(ms_deform_attn(v, spatial_shapes, loc, aw))
