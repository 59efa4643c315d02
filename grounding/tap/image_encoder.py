"""TAP image encoder: a windowed ViT with convolutional cross-window bottlenecks.

Not SAM's ViT: every block attends inside non-overlapping windows with a Swin-style relative
position bias table; after every ``depth // 4``-th block the windows are reassembled into a
feature map and mixed by a ResNet bottleneck (BatchNorm); the neck is conv + BN (no LayerNorm2d).
Parameter names follow the official ``image_encoder.*`` state_dict layout.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """``[B, H, W, C]`` -> ``[B * nH * nW, ws * ws, C]`` (windows image / row / col major)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def window_merge(x: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``[B * nH * nW, ws * ws, C]`` -> ``[B, H, W, C]``."""
    c = x.shape[-1]
    nh, nw = h // window_size, w // window_size
    x = x.reshape(-1, nh, nw, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def relative_position_index(window_size: int) -> torch.Tensor:
    """``int64 [ws^2, ws^2]``: ``(dy + ws - 1) * (2 ws - 1) + (dx + ws - 1)``, query minus key."""
    ys, xs = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    dy = ys[:, None] - ys[None, :] + window_size - 1
    dx = xs[:, None] - xs[None, :] + window_size - 1
    return dy * (2 * window_size - 1) + dx


class RelPosEmbed(nn.Module):
    """Learned per-head bias table ``[heads, (2 ws - 1)^2]`` gathered by a stored index buffer."""

    def __init__(self, *, num_heads: int, window_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_heads, (2 * window_size - 1) ** 2))
        self.register_buffer("index", relative_position_index(window_size))

    def bias(self) -> torch.Tensor:
        """``[heads, ws^2, ws^2]`` additive attention bias."""
        return self.weight[:, self.index]


class WindowAttention(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_embed = RelPosEmbed(num_heads=num_heads, window_size=window_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        bias = self.rel_pos_embed.bias().to(q.dtype)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(o.transpose(1, 2).flatten(2))


class Mlp(nn.Module):
    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm window-attention block (LayerNorm eps 1e-5)."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float, window_size: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim=dim, num_heads=num_heads, window_size=window_size)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 convs with BatchNorm and GELU, plus identity (no activation after the sum)."""

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        width = dim // 2
        self.conv1 = nn.Conv2d(dim, width, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, dim, 1, bias=False)
        self.norm3 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.norm1(self.conv1(x)))
        y = F.gelu(self.norm2(self.conv2(y)))
        return self.norm3(self.conv3(y)) + x


class PatchEmbed(nn.Module):
    def __init__(self, *, dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch_size, patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class PosEmbed(nn.Module):
    """Absolute position embedding stored flat as ``[grid * grid, C]``."""

    def __init__(self, *, dim: int, num_patches: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_patches, dim))
        nn.init.normal_(self.weight, std=0.02)


class Neck(nn.Module):
    """Single-level simple feature pyramid: 1x1 conv + BN, 3x3 conv + BN (no activation)."""

    def __init__(self, *, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lateral_conv = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_dim, out_dim, 1, bias=False), nn.BatchNorm2d(out_dim))])
        self.output_conv = nn.ModuleList([nn.Sequential(
            nn.Conv2d(out_dim, out_dim, 3, padding=1, bias=False), nn.BatchNorm2d(out_dim))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_conv[0](self.lateral_conv[0](x))


class TapImageEncoder(nn.Module):
    """Windowed ViT + cross-window bottlenecks + BN neck.

    Input ``float [B, 3, S, S]`` (normalised BGR, ``S = image_size``); output
    ``[B, out_dim, S / patch, S / patch]``.
    """

    def __init__(self, *, depth: int, embed_dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 patch_size: int = 16, window_size: int = 16, image_size: int = 1024,
                 out_dim: int = 256) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        grid = image_size // patch_size
        if grid % window_size:
            raise ValueError(f"grid {grid} (image_size / patch_size) is not a multiple of "
                             f"window_size {window_size}")
        if depth < 4:
            raise ValueError(f"depth must be at least 4 (got {depth})")
        self.cross_indices = list(range(depth // 4 - 1, depth, depth // 4))
        if len(self.cross_indices) > 4:
            raise ValueError(f"depth {depth} would need {len(self.cross_indices)} cross-window "
                             "bottlenecks; the architecture has 4 (use a multiple of 4)")
        self.embed_dim, self.window_size, self.grid = embed_dim, window_size, grid
        self.patch_embed = PatchEmbed(dim=embed_dim, patch_size=patch_size)
        self.pos_embed = PosEmbed(dim=embed_dim, num_patches=grid * grid)
        self.blocks = nn.ModuleList(
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, window_size=window_size)
            for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.cross_conv = nn.ModuleList(Bottleneck(dim=embed_dim) for _ in range(4))
        self.neck = Neck(in_dim=embed_dim, out_dim=out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g, ws = self.grid, self.window_size
        x = self.patch_embed(x) + self.pos_embed.weight
        x = window_partition(x.reshape(b, g, g, -1), ws)
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i == last:
                x = self.norm(x)
            if i in self.cross_indices or i == last:
                x = window_merge(x, ws, g, g).permute(0, 3, 1, 2)
                if i in self.cross_indices:
                    x = self.cross_conv[self.cross_indices.index(i)](x)
                if i != last:
                    x = window_partition(x.permute(0, 2, 3, 1), ws)
        return self.neck(x.contiguous())
