"""Cross-modality decoder with iterative box refinement (official ``TransformerDecoder``), batch-first."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .deformable_attention import MSDeformAttn
from .encoder import sine_embed_1d


class MLP(nn.Module):
    """Linear layers with ReLU between (official ``MLP``; keys ``layers.N``)."""

    def __init__(self, *, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [out_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def box_sine_embed(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] (cx, cy, w, h) -> [..., 512] in the order (y, x, w, h), 128 features each."""
    parts = [sine_embed_1d(boxes[..., i], 128) for i in range(4)]
    return torch.cat([parts[1], parts[0], parts[2], parts[3]], -1)


class DecoderLayer(nn.Module):
    def __init__(self, *, d_model: int, num_heads: int, dim_feedforward: int, num_levels: int, num_points: int) -> None:
        super().__init__()
        self.cross_attn = MSDeformAttn(embed_dim=d_model, num_heads=num_heads, num_levels=num_levels, num_points=num_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.ca_text = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.catext_norm = nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, tgt, query_pos, ref_input, memory, memory_padding_mask, spatial_shapes, text, text_padding_mask):
        q = tgt + query_pos
        tgt = self.norm2(tgt + self.self_attn(q, q, tgt, need_weights=False)[0])
        tgt = self.catext_norm(tgt + self.ca_text(tgt + query_pos, text, text, key_padding_mask=text_padding_mask,
                                                  need_weights=False)[0])
        tgt = self.norm1(tgt + self.cross_attn(tgt + query_pos, ref_input, memory, spatial_shapes, memory_padding_mask))
        return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class Decoder(nn.Module):
    """Keys: layers.N, norm, ref_point_head (bbox_embed is attached by the model, tied to its heads)."""

    def __init__(self, *, num_layers: int, d_model: int = 256, num_heads: int = 8, dim_feedforward: int = 2048,
                 num_levels: int = 4, num_points: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderLayer(d_model=d_model, num_heads=num_heads, dim_feedforward=dim_feedforward,
                         num_levels=num_levels, num_points=num_points) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.ref_point_head = MLP(in_dim=2 * d_model, hidden_dim=d_model, out_dim=d_model, num_layers=2)
        self.bbox_embed: nn.ModuleList | None = None

    def forward(self, tgt, refpoints_unsigmoid, memory, memory_padding_mask, spatial_shapes, valid_ratios, text,
                text_padding_mask):
        """tgt [B,Q,D]; refpoints_unsigmoid [B,Q,4]. Returns (hs list of [B,Q,D] normed per layer,
        references list (n_layers+1) of [B,Q,4] sigmoid boxes)."""
        if self.bbox_embed is None:
            raise ValueError("decoder.bbox_embed must be set by the model")
        ref = refpoints_unsigmoid.sigmoid()
        refs, hs = [ref], []
        vr = torch.cat([valid_ratios, valid_ratios], -1)[:, None]  # [B,1,L,4]
        out = tgt
        for i, layer in enumerate(self.layers):
            ref_input = ref[:, :, None] * vr
            query_pos = self.ref_point_head(box_sine_embed(ref_input[:, :, 0]))
            out = layer(out, query_pos, ref_input, memory, memory_padding_mask, spatial_shapes, text, text_padding_mask)
            new_ref = (self.bbox_embed[i](out) + inverse_sigmoid(ref)).sigmoid()
            ref = new_ref.detach()
            refs.append(new_ref)
            hs.append(self.norm(out))
        return hs, refs
