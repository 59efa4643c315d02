"""Mask2Former's ``MSDeformAttnPixelDecoder`` as PSALM builds it (official key names), in pure PyTorch.

res5, res4, res3 -> 1x1 conv + GroupNorm(32) -> deformable encoder (post-norm, no padding mask) -> maps of
strides 32, 16, 8; FPN on res2 (bilinear upsampling of the stride-8 map) -> ``mask_features`` at stride 4.
The deformable attention is :class:`grounding.groundingdino.deformable_attention.MSDeformAttn` (the official
``grid_sample`` fallback numerics).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..groundingdino.deformable_attention import MSDeformAttn


def sine_position_embedding(b: int, h: int, w: int, num_feats: int, *, device=None,
                            temperature: float = 10000.0) -> torch.Tensor:
    """DETR's normalised sine embedding of an unpadded ``h x w`` map -> ``[b, 2*num_feats, h, w]`` (y then x,
    sin/cos interleaved; cumulative count / last * 2pi)."""
    ones = torch.ones(b, h, w, device=device)
    y = ones.cumsum(1, dtype=torch.float32)
    x = ones.cumsum(2, dtype=torch.float32)
    y = y / (y[:, -1:, :] + 1e-6) * (2 * math.pi)
    x = x / (x[:, :, -1:] + 1e-6) * (2 * math.pi)
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    px, py = x[..., None] / dim_t, y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).flatten(3)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((py, px), dim=3).permute(0, 3, 1, 2)


class EncoderLayer(nn.Module):
    """Deformable self-attention + FFN (ReLU), each followed by its LayerNorm."""

    def __init__(self, *, dim: int, ffn_dim: int, num_heads: int, num_levels: int, num_points: int) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(embed_dim=dim, num_heads=num_heads, num_levels=num_levels, num_points=num_points)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, ref: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
        src = self.norm1(src + self.self_attn(src + pos, ref, src, shapes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DeformableEncoder(nn.Module):
    """``transformer`` of the official pixel decoder: ``level_embed`` [levels, D] and ``encoder.layers``."""

    def __init__(self, *, dim: int, ffn_dim: int, num_heads: int, num_layers: int, num_levels: int,
                 num_points: int) -> None:
        super().__init__()
        self.level_embed = nn.Parameter(torch.zeros(num_levels, dim))
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(
            EncoderLayer(dim=dim, ffn_dim=ffn_dim, num_heads=num_heads, num_levels=num_levels, num_points=num_points)
            for _ in range(num_layers))
        nn.init.normal_(self.level_embed)

    @staticmethod
    def reference_points(shapes: Sequence[tuple[int, int]], device) -> torch.Tensor:
        """Pixel centres of every level, normalised -> ``[1, sum(h*w), levels, 2]`` (x, y); valid ratios are 1."""
        refs = []
        for h, w in shapes:
            ry, rx = torch.meshgrid(torch.linspace(0.5, h - 0.5, h, dtype=torch.float32, device=device),
                                    torch.linspace(0.5, w - 0.5, w, dtype=torch.float32, device=device), indexing="ij")
            refs.append(torch.stack((rx.reshape(-1) / w, ry.reshape(-1) / h), -1)[None])
        return torch.cat(refs, 1)[:, :, None].expand(-1, -1, len(shapes), -1)

    def forward(self, srcs: Sequence[torch.Tensor], pos: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        shapes = [tuple(s.shape[-2:]) for s in srcs]
        flat = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], 1)
        lvl_pos = torch.cat([p.flatten(2).transpose(1, 2) + self.level_embed[i].view(1, 1, -1)
                             for i, p in enumerate(pos)], 1)
        spatial = torch.as_tensor(shapes, dtype=torch.long, device=flat.device)
        ref = self.reference_points(shapes, flat.device).to(flat.dtype)
        for layer in self.encoder.layers:
            flat = layer(flat, lvl_pos, ref, spatial)
        return flat, spatial


@dataclass(frozen=True)
class PixelFeatures:
    """Pixel decoder outputs of a batch.

    Attributes:
        mask_features: ``[B, mask_dim, S/4, S/4]``.
        multi_scale: three maps ``[B, conv_dim, h, w]`` of strides 32, 16, 8 (the transformer decoder's memory).
    """

    mask_features: torch.Tensor
    multi_scale: tuple[torch.Tensor, ...]


class PixelDecoder(nn.Module):
    """``pixel_decoder``: Swin features (res2..res5) -> :class:`PixelFeatures`."""

    def __init__(self, *, in_channels: Sequence[int], conv_dim: int, mask_dim: int, num_heads: int, ffn_dim: int,
                 num_layers: int, num_points: int = 4) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError("the pixel decoder takes res2..res5 (4 feature maps)")
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, conv_dim, 1), nn.GroupNorm(32, conv_dim)) for c in in_channels[1:][::-1])
        self.transformer = DeformableEncoder(dim=conv_dim, ffn_dim=ffn_dim, num_heads=num_heads,
                                             num_layers=num_layers, num_levels=3, num_points=num_points)
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, 1)
        self.adapter_1 = nn.Sequential(nn.Conv2d(in_channels[0], conv_dim, 1), nn.GroupNorm(32, conv_dim), nn.ReLU())
        self.layer_1 = nn.Sequential(nn.Conv2d(conv_dim, conv_dim, 3, padding=1), nn.GroupNorm(32, conv_dim),
                                     nn.ReLU())
        self.pos_feats = conv_dim // 2

    def forward(self, features: Sequence[torch.Tensor]) -> PixelFeatures:
        res2, *rest = features
        srcs, pos = [], []
        for proj, x in zip(self.input_proj, rest[::-1]):  # res5, res4, res3
            srcs.append(proj(x))
            b, _, h, w = x.shape
            pos.append(sine_position_embedding(b, h, w, self.pos_feats, device=x.device).to(x.dtype))
        memory, spatial = self.transformer(srcs, pos)
        maps = []
        for (h, w), z in zip(spatial.tolist(), memory.split([h * w for h, w in spatial.tolist()], 1)):
            maps.append(z.transpose(1, 2).reshape(z.shape[0], -1, h, w))
        lateral = self.adapter_1(res2)
        up = F.interpolate(maps[-1].float(), size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        fpn = self.layer_1(lateral + up.to(lateral.dtype))
        return PixelFeatures(mask_features=self.mask_features(fpn), multi_scale=tuple(maps))
