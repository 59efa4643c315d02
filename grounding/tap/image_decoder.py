"""TAP image decoder: SAM's two-way transformer with 4 extra semantic tokens.

Query tokens, in order: ``num_mask_tokens`` sem tokens, 1 IoU token, ``num_mask_tokens`` mask
tokens, then the K prompt embeddings. Outputs all 4 masks (no multimask flag), the IoU
predictions, the raw sem tokens (for the caption decoder) and the sem embeddings (for concepts).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class DecoderOutput:
    """Image decoder outputs for ``N`` prompts.

    Attributes:
        iou_pred: ``float32 [N, M]`` predicted IoU per mask token (raw, no sigmoid).
        mask_pred: ``[N, M, 4h, 4w]`` low-resolution mask logits in the padded input frame
            (``4h = image_size / 4`` for patch 16).
        sem_tokens: ``[N, M, 1, D]`` semantic tokens after the final LayerNorm (caption prompts).
        sem_embeds: ``[N, M, E]`` semantic embeddings (concept classification).
        query_out: ``[N, 2M + 1 + K, D]`` all transformer output tokens.
    """

    iou_pred: torch.Tensor
    mask_pred: torch.Tensor
    sem_tokens: torch.Tensor
    sem_embeds: torch.Tensor
    query_out: torch.Tensor


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections (internal dim ``dim * ratio``)."""

    def __init__(self, *, dim: int, num_heads: int, ratio: float = 1.0) -> None:
        super().__init__()
        inner = int(dim * ratio)
        if inner % num_heads:
            raise ValueError(f"attention width {inner} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, inner // num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.proj = nn.Linear(inner, dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

        o = F.scaled_dot_product_attention(heads(self.q_proj(q)), heads(self.k_proj(k)),
                                           heads(self.v_proj(v)))
        return self.proj(o.transpose(1, 2).flatten(2))


class Mlp(nn.Module):
    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class TwoWayBlock(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, mlp_dim: int, skip_first_query_pos: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim=dim, num_heads=num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim=dim, num_heads=num_heads, ratio=0.5)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden_dim=mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim=dim, num_heads=num_heads, ratio=0.5)
        self.norm4 = nn.LayerNorm(dim)
        self.skip_first_query_pos = skip_first_query_pos

    def forward(self, query, key, query_pos, key_pos):
        if self.skip_first_query_pos:
            query = self.norm1(self.self_attn(query, query, query))
        else:
            q = query + query_pos
            query = self.norm1(self.self_attn(q, q, query) + query)
        q, k = query + query_pos, key + key_pos
        query = self.norm2(self.cross_attn_token_to_image(q, k, key) + query)
        query = self.norm3(self.mlp(query) + query)
        key = self.norm4(self.cross_attn_image_to_token(k, query + query_pos, query) + key)
        return query, key


class TwoWayTransformer(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, mlp_dim: int, depth: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TwoWayBlock(dim=dim, num_heads=num_heads, mlp_dim=mlp_dim, skip_first_query_pos=i == 0)
            for i in range(depth))
        self.final_attn_token_to_image = Attention(dim=dim, num_heads=num_heads, ratio=0.5)
        self.norm = nn.LayerNorm(dim)

    def forward(self, query, key, query_pos, key_pos):
        for blk in self.blocks:
            query, key = blk(query, key, query_pos, key_pos)
        q, k = query + query_pos, key + key_pos
        query = self.norm(self.final_attn_token_to_image(q, k, key) + query)
        return query, key


class Predictor(nn.Module):
    """``depth``-layer ReLU MLP ``in -> hidden -> ... -> out`` (layers in ``layers.i``)."""

    def __init__(self, *, in_dim: int, out_dim: int, hidden_dim: int | None = None, depth: int = 3):
        super().__init__()
        hidden = [hidden_dim or in_dim] * (depth - 1)
        dims_in, dims_out = [in_dim] + hidden, hidden + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims_in, dims_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fc in self.layers[:-1]:
            x = F.relu(fc(x))
        return self.layers[-1](x)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (eps 1e-5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class TapImageDecoder(nn.Module):
    """Prompt embeddings + image embedding -> masks, IoU, sem tokens and sem embeddings."""

    def __init__(self, *, embed_dim: int = 256, num_heads: int = 8, depth: int = 2,
                 mlp_dim: int = 2048, num_mask_tokens: int = 4, sem_embed_dim: int = 1024) -> None:
        super().__init__()
        if embed_dim % 8:
            raise ValueError(f"decoder embed_dim must be a multiple of 8 (got {embed_dim})")
        self.embed_dim, self.num_mask_tokens = embed_dim, num_mask_tokens
        self.transformer = TwoWayTransformer(dim=embed_dim, num_heads=num_heads, mlp_dim=mlp_dim,
                                             depth=depth)
        self.iou_token = nn.Embedding(1, embed_dim)
        self.sem_tokens = nn.Embedding(num_mask_tokens, embed_dim)
        self.mask_tokens = nn.Embedding(num_mask_tokens, embed_dim)
        self.output_conv = nn.Sequential(
            nn.ConvTranspose2d(embed_dim, embed_dim // 4, 2, 2),
            ChannelLayerNorm(embed_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(embed_dim // 4, embed_dim // 8, 2, 2),
            nn.GELU(),
        )
        self.mask_pred = nn.ModuleList(Predictor(in_dim=embed_dim, out_dim=embed_dim // 8)
                                       for _ in range(num_mask_tokens))
        self.iou_pred = Predictor(in_dim=embed_dim, out_dim=num_mask_tokens)
        self.sem_pred = Predictor(in_dim=embed_dim, out_dim=sem_embed_dim, hidden_dim=sem_embed_dim)

    def forward(self, image_embeddings: torch.Tensor, sparse_embeds: torch.Tensor,
                image_pe: torch.Tensor) -> DecoderOutput:
        """``image_embeddings [B, D, h, w]``, ``sparse_embeds [N, K, D]`` (N a multiple of B,
        image-major), ``image_pe [h * w, D]``."""
        b, d, h, w = image_embeddings.shape
        n = sparse_embeds.shape[0]
        if n % b:
            raise ValueError(f"{n} prompts cannot be split evenly over {b} images")
        m = self.num_mask_tokens
        tokens = torch.cat([self.sem_tokens.weight, self.iou_token.weight, self.mask_tokens.weight])
        query = torch.cat([tokens.unsqueeze(0).expand(n, -1, -1), sparse_embeds], dim=1)
        key = image_embeddings.flatten(2).transpose(1, 2).repeat_interleave(n // b, dim=0)
        query, key = self.transformer(query, key, query, image_pe)
        upscaled = self.output_conv(key.transpose(1, 2).reshape(n, d, h, w))
        sem_tokens = query[:, :m]
        iou_token, mask_tokens = query[:, m], query[:, m + 1:2 * m + 1]
        hyper = torch.stack([f(mask_tokens[:, i]) for i, f in enumerate(self.mask_pred)], dim=1)
        mask_pred = (hyper @ upscaled.flatten(2)).view(n, m, *upscaled.shape[-2:])
        sem_tokens = sem_tokens.unsqueeze(2)
        return DecoderOutput(iou_pred=self.iou_pred(iou_token).float(), mask_pred=mask_pred,
                             sem_tokens=sem_tokens, sem_embeds=self.sem_pred(sem_tokens.flatten(2)),
                             query_out=query)
