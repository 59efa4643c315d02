"""The vision side of PSALM's language model input: Swin res5 -> conv projector -> image tokens; region prompts ->
one token each (points sampled in the prompt mask, bilinearly read from the image-token grid, averaged).

The Swin backbone is the detection-style Swin of :mod:`grounding.groundingdino.swin` (same numerics and key
names as PSALM's copy: padding after ``norm1``, unmasked padded tokens, shift mask -100, ``norm0..norm3``).
transformers' Swin is not used: it shrinks the window to the feature size when that is smaller (PSALM pads).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """ResNet BasicBlock as PSALM's ``ResNetSwin`` uses it: stride-2 ``conv1``, then ``conv2`` applied twice
    (the official forward calls it again when there is no deformable conv), BN in eval, 1x1 stride-2 shortcut."""

    def __init__(self, *, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = nn.Sequential(nn.Conv2d(in_channels, width, 1, stride=2, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(self.conv2(out)))
        return F.relu(out + self.downsample(x))


class SwinProjector(nn.Module):
    """``mm_projector`` (``swin_conv``): res5 ``[B, C5, S/32, S/32]`` -> image tokens ``[B, (S/64)^2, Hd]``
    (row-major over the S/64 grid)."""

    def __init__(self, *, in_channels: int, width: int, out_dim: int) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(BasicBlock(in_channels=in_channels, width=width))
        self.fc = nn.Linear(width, out_dim)

    def forward(self, res5: torch.Tensor) -> torch.Tensor:
        x = self.layer1(res5)
        return self.fc(x.flatten(2).transpose(1, 2))


def sample_region_points(mask: torch.Tensor, num_points: int,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``num_points`` points ``[P, 2]`` as (y/S, x/S) of a prompt mask ``[S, S]`` (official ``rand_sample_repeat``):
    all pixels plus random repeats when there are fewer, a random subset (``randperm``) when more.

    Sampling uses ``generator`` (the official code uses the global RNG; seeding a generator with the same seed
    gives the same points). An empty mask is a ``ValueError``.
    """
    size = torch.tensor(mask.shape, dtype=torch.float32, device=mask.device)
    pts = mask.nonzero() / size
    n = pts.shape[0]
    if n == 0:
        raise ValueError("a region prompt mask is empty (the prompt lies outside the image?)")
    if n < num_points:
        extra = torch.randint(0, n, (num_points - n,), generator=generator)
        return torch.cat([pts, pts[extra.to(pts.device)]])
    if n > num_points:
        return pts[torch.randperm(n, generator=generator)[:num_points].to(pts.device)]
    return pts


def pool_region_features(image_tokens: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """One feature per region: image tokens ``[N, Hd]`` (a square grid) read at ``points [K, P, 2]`` (y/S, x/S)
    with bilinear ``grid_sample`` (``align_corners=True``, coordinates ``2p - 1`` as in the official code) and
    averaged over the P points -> ``[K, Hd]``."""
    n, hd = image_tokens.shape
    side = int(round(n ** 0.5))
    if side * side != n:
        raise ValueError(f"{n} image tokens are not a square grid")
    k = points.shape[0]
    grid_map = image_tokens.reshape(side, side, hd).permute(2, 0, 1).unsqueeze(0).expand(k, -1, -1, -1)
    grid = (2.0 * points.flip(-1) - 1.0).unsqueeze(2).to(torch.float32)
    sampled = F.grid_sample(grid_map.float(), grid, align_corners=True)  # [K, Hd, P, 1]
    return sampled.squeeze(3).mean(-1).to(image_tokens.dtype)
