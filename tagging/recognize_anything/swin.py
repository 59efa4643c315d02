"""Swin Transformer image encoder laid out like the ``visual_encoder`` of RAM, RAM++ and Tag2Text (official
key names).

Written from the Swin paper's algorithm and the numerics described in
``shared/parity/ram_plus/NOTES.md``: pre-LN blocks, (shifted) window attention with a relative
position bias, patch merging between stages, a final LayerNorm, and a prepended "CLS" token that
is the mean of the final tokens. Tokens are ``[B, L, C]`` in row-major (y, x) grid order.

The ``relative_position_index`` and ``attn_mask`` buffers are deterministic and non-persistent:
they are rebuilt here and are not part of ``state_dict()`` (the official loader drops them too).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def relative_position_index(window: int) -> torch.Tensor:
    """``int64 [w*w, w*w]``: index into the ``[(2w-1)^2, heads]`` bias table for each token pair."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # [2, w*w]
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, H, W, C] -> [B * nW, window*window, C]`` (windows in row-major order)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``[B * nW, window*window, C] -> [B, H, W, C]``."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """``float32 [nW, w*w, w*w]``: 0 for pairs from the same region after the cyclic shift, -100 else."""
    region = torch.zeros(1, h, w, 1)
    label = 0
    for ys in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for xs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            region[:, ys, xs, :] = label
            label += 1
    ids = window_partition(region, window).squeeze(-1)  # [nW, w*w]
    diff = ids[:, None, :] - ids[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias."""

    def __init__(self, *, dim: int, window: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.window = window
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``[B*nW, N, C]``; ``mask``: ``[nW, N, N]`` additive or ``None``."""
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, n, n)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-LN block: ``x + attn(norm1(x))`` with an optional cyclic shift, then ``x + mlp(norm2(x))``."""

    def __init__(self, *, dim: int, resolution: int, num_heads: int, window: int, shift: int,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if resolution <= window:  # the window covers the whole grid: no shift
            window, shift = resolution, 0
        if resolution % window:
            raise ValueError(f"token grid {resolution} is not divisible by the window size {window}")
        self.resolution, self.window, self.shift = resolution, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim=dim, window=window, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden=int(dim * mlp_ratio))
        mask = shifted_window_mask(resolution, resolution, window, shift) if shift else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, c = x.shape
        r = self.resolution
        h = self.norm1(x).view(b, r, r, c)
        if self.shift:
            h = torch.roll(h, shifts=(-self.shift, -self.shift), dims=(1, 2))
        h = self.attn(window_partition(h, self.window), self.attn_mask)
        h = window_reverse(h, self.window, r, r)
        if self.shift:
            h = torch.roll(h, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + h.reshape(b, length, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token: concat (r0c0, r1c0, r0c1, r1c1), LayerNorm(4C), Linear 4C->2C."""

    def __init__(self, *, dim: int, resolution: int) -> None:
        super().__init__()
        if resolution % 2:
            raise ValueError(f"cannot merge patches of an odd token grid ({resolution})")
        self.resolution = resolution
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        r = self.resolution
        x = x.view(b, r, r, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class SwinStage(nn.Module):
    def __init__(self, *, dim: int, resolution: int, depth: int, num_heads: int, window: int,
                 downsample: bool, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim=dim, resolution=resolution, num_heads=num_heads, window=window,
                      shift=0 if i % 2 == 0 else window // 2, mlp_ratio=mlp_ratio)
            for i in range(depth))
        self.downsample = PatchMerging(dim=dim, resolution=resolution) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    """Conv patch x patch / stride patch, then LayerNorm: ``[B,3,S,S] -> [B,(S/p)^2,C]``."""

    def __init__(self, *, patch_size: int, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class SwinEncoder(nn.Module):
    """Swin image encoder; output ``[B, 1 + (S/(p*2^(n-1)))^2, C_last]`` with the mean token first."""

    def __init__(self, *, image_size: int, patch_size: int = 4, embed_dim: int,
                 depths: Sequence[int], num_heads: Sequence[int], window_size: int,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if len(depths) != len(num_heads) or not depths:
            raise ValueError(f"depths {list(depths)} and num_heads {list(num_heads)} must be non-empty "
                             "and of equal length")
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        self.image_size = image_size
        self.patch_embed = PatchEmbed(patch_size=patch_size, embed_dim=embed_dim)
        res, dim = image_size // patch_size, embed_dim
        layers = []
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            last = i == len(depths) - 1
            layers.append(SwinStage(dim=dim, resolution=res, depth=depth, num_heads=heads,
                                    window=window_size, downsample=not last, mlp_ratio=mlp_ratio))
            if not last:
                res, dim = res // 2, dim * 2
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(dim)
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: normalised ``[B, 3, S, S]`` -> tokens ``[B, 1 + L, C]`` (token 0 = mean of the rest)."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != self.image_size or x.shape[3] != self.image_size:
            raise ValueError(f"expected images [B, 3, {self.image_size}, {self.image_size}], "
                             f"got {list(x.shape)}")
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        return torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
