"""TAP prompt encoder: random-Fourier point embeddings (no dense / mask branch).

Point labels: 0 background, 1 foreground, 2 box top-left, 3 box bottom-right, 4 padding.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: label values of the official prompt encoder
LABEL_BG, LABEL_FG, LABEL_BOX_LT, LABEL_BOX_RB, LABEL_PAD = 0, 1, 2, 3, 4

_PI4, _PI2 = 4 * 3.1415926, 2 * 3.1415926  # pi as written in the official code


def normalize_points(points_xy: np.ndarray, image_size: int) -> np.ndarray:
    """Pixel coords of the resized (unpadded) image -> ``((x + 0.5) / S, (y + 0.5) / S)`` in [0, 1].

    ``points_xy``: ``float32 [..., 2]``; returns ``float32`` of the same shape (``S`` is the
    padded square input size).
    """
    coords = np.asarray(points_xy, dtype=np.float32) + np.float32(0.5)
    coords = (coords.astype(np.float64) / float(image_size)).astype(np.float32)
    return coords.clip(0, 1)


class TapPromptEncoder(nn.Module):
    """Sparse prompt embeddings ``[N, K, D]`` and the image positional encoding ``[h * w, D]``."""

    def __init__(self, *, embed_dim: int) -> None:
        super().__init__()
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even (got {embed_dim})")
        self.point_embed = nn.Embedding(5, embed_dim)  # bg, fg, box-lt, box-rb, pad
        self.register_buffer("coord_matrix", torch.randn(2, embed_dim // 2))

    def encode_coords(self, coords: torch.Tensor) -> torch.Tensor:
        """Normalised ``[..., 2]`` (x, y) -> ``[..., D]`` Fourier features (float32 math)."""
        rad = (coords.float() * _PI4 - _PI2) @ self.coord_matrix.float()
        return torch.cat([rad.sin(), rad.cos()], dim=-1).to(self.point_embed.weight.dtype)

    def forward(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``coords`` normalised ``[N, K, 2]``, ``labels`` int64 ``[N, K]`` -> ``[N, K, D]``."""
        embed = self.encode_coords(coords)
        embed = embed * labels.ne(LABEL_PAD).unsqueeze(-1).to(embed.dtype)
        return embed + self.point_embed(labels)

    def image_pe(self, h: int, w: int) -> torch.Tensor:
        """Fourier encoding of the embedding grid's cell centres, row-major ``[h * w, D]``."""
        dev = self.coord_matrix.device
        grid = torch.ones(h, w, dtype=torch.float32, device=dev)
        y = (grid.cumsum(0) - 0.5) / h
        x = (grid.cumsum(1) - 0.5) / w
        return self.encode_coords(torch.stack([x, y], dim=-1)).flatten(0, 1)
