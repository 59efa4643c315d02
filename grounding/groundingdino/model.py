"""Grounding DINO model (official key layout) and build functions with sizes spelled out."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .bert import TextEncoder
from .decoder import MLP, Decoder, inverse_sigmoid
from .encoder import FeatureEnhancer
from .swin import SwinTransformer

MAX_TEXT_LEN = 256


def image_position_embedding(mask: torch.Tensor, num_feats: int = 128, temperature: float = 20.0) -> torch.Tensor:
    """Normalised sine embedding of a padding mask [B,H,W] (True = pad) -> [B, 2*num_feats, H, W] (y then x)."""
    not_mask = ~mask
    y = not_mask.cumsum(1, dtype=torch.float32)
    x = not_mask.cumsum(2, dtype=torch.float32)
    scale = 2 * math.pi
    y = y / (y[:, -1:, :] + 1e-6) * scale
    x = x / (x[:, :, -1:] + 1e-6) * scale
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=mask.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    px = x[..., None] / dim_t
    py = y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).flatten(3)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((py, px), dim=3).permute(0, 3, 1, 2)


def valid_ratio(mask: torch.Tensor) -> torch.Tensor:
    """[B,H,W] padding mask -> [B,2] (w, h) fractions of unpadded columns/rows."""
    _, h, w = mask.shape
    vh = torch.sum(~mask[:, :, 0], 1).float() / h
    vw = torch.sum(~mask[:, 0, :], 1).float() / w
    return torch.stack([vw, vh], -1)


def encoder_proposals(memory: torch.Tensor, padding_mask: torch.Tensor, spatial_shapes: torch.Tensor):
    """Official ``gen_encoder_output_proposals``: (memory with invalid rows zeroed, proposals [B,S,4] logits,
    +inf where invalid)."""
    b = memory.shape[0]
    props, cur = [], 0
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        m = padding_mask[:, cur: cur + h * w].view(b, h, w)
        vh = torch.sum(~m[:, :, 0], 1)
        vw = torch.sum(~m[:, 0, :], 1)
        gy, gx = torch.meshgrid(torch.linspace(0, h - 1, h, dtype=torch.float32, device=memory.device),
                                torch.linspace(0, w - 1, w, dtype=torch.float32, device=memory.device), indexing="ij")
        grid = torch.stack([gx, gy], -1)
        scale = torch.stack([vw, vh], 1).view(b, 1, 1, 2)
        grid = (grid.unsqueeze(0).expand(b, -1, -1, -1) + 0.5) / scale
        wh = torch.ones_like(grid) * 0.05 * (2.0 ** lvl)
        props.append(torch.cat((grid, wh), -1).view(b, -1, 4))
        cur += h * w
    p = torch.cat(props, 1)
    valid = ((p > 0.01) & (p < 0.99)).all(-1, keepdim=True)
    p = torch.log(p / (1 - p))
    p = p.masked_fill(padding_mask.unsqueeze(-1), float("inf")).masked_fill(~valid, float("inf"))
    mem = memory.masked_fill(padding_mask.unsqueeze(-1), 0.0).masked_fill(~valid, 0.0)
    return mem, p


def contrastive_logits(x: torch.Tensor, text: torch.Tensor, text_token_mask: torch.Tensor,
                       max_text_len: int = MAX_TEXT_LEN) -> torch.Tensor:
    """x [B,N,D] . text [B,T,D]^T, padded text -inf, padded to max_text_len with -inf -> [B,N,max_text_len]."""
    res = (x @ text.transpose(-1, -2)).masked_fill(~text_token_mask[:, None, :], float("-inf"))
    out = res.new_full((*res.shape[:-1], max_text_len), float("-inf"))
    out[..., : res.shape[-1]] = res
    return out


class Transformer(nn.Module):
    """Holds the official ``transformer.*`` keys."""

    def __init__(self, *, d_model: int, num_heads: int, enc_layers: int, dec_layers: int, dim_feedforward: int,
                 num_queries: int, num_levels: int, enc_points: int, dec_points: int) -> None:
        super().__init__()
        self.num_queries = num_queries
        self.level_embed = nn.Parameter(torch.zeros(num_levels, d_model))
        self.encoder = FeatureEnhancer(num_layers=enc_layers, d_model=d_model, num_heads=num_heads,
                                       dim_feedforward=dim_feedforward, num_levels=num_levels, num_points=enc_points)
        self.decoder = Decoder(num_layers=dec_layers, d_model=d_model, num_heads=num_heads,
                               dim_feedforward=dim_feedforward, num_levels=num_levels, num_points=dec_points)
        self.tgt_embed = nn.Embedding(num_queries, d_model)
        self.enc_output = nn.Linear(d_model, d_model)
        self.enc_output_norm = nn.LayerNorm(d_model)
        self.enc_out_bbox_embed = MLP(in_dim=d_model, hidden_dim=d_model, out_dim=4, num_layers=3)
        nn.init.normal_(self.level_embed)


@dataclass
class GroundingDINOOutput:
    """Raw network outputs.

    Attributes:
        pred_logits: [B,Q,256] text-slot logits (padded/unused slots -inf).
        pred_boxes: [B,Q,4] sigmoid (cx, cy, w, h) normalised to each unpadded input image.
        text_token_mask: bool [B,T] real text tokens.
    """

    pred_logits: torch.Tensor
    pred_boxes: torch.Tensor
    text_token_mask: torch.Tensor
    #: with ``return_intermediate=True`` (training): every decoder layer's logits/boxes (the last equals
    #: ``pred_logits``/``pred_boxes``) and the encoder's top-k proposals (two-stage output: logits of the
    #: selected memory and their boxes, not detached).
    layer_logits: Optional[list[torch.Tensor]] = None
    layer_boxes: Optional[list[torch.Tensor]] = None
    enc_logits: Optional[torch.Tensor] = None
    enc_boxes: Optional[torch.Tensor] = None


class GroundingDINO(nn.Module):
    """Image + tokenised caption -> per-query text-slot logits and boxes (no pre/post-processing)."""

    def __init__(self, *, swin_embed_dim: int, swin_depths: Sequence[int], swin_num_heads: Sequence[int],
                 swin_window_size: int, bert_config: dict, hidden_dim: int = 256, nheads: int = 8,
                 enc_layers: int = 6, dec_layers: int = 6, dim_feedforward: int = 2048, num_queries: int = 900,
                 num_feature_levels: int = 4, enc_n_points: int = 4, dec_n_points: int = 4,
                 max_text_len: int = MAX_TEXT_LEN) -> None:
        super().__init__()
        if hidden_dim != 256:
            raise ValueError("hidden_dim must be 256 (sine embeddings are fixed at 256 features)")
        if num_feature_levels != 4:
            raise ValueError("only 4 feature levels (3 backbone levels + 1 extra) are supported")
        self.max_text_len = max_text_len
        self.transformer = Transformer(d_model=hidden_dim, num_heads=nheads, enc_layers=enc_layers,
                                       dec_layers=dec_layers, dim_feedforward=dim_feedforward,
                                       num_queries=num_queries, num_levels=num_feature_levels,
                                       enc_points=enc_n_points, dec_points=dec_n_points)
        self.bert = TextEncoder(config=bert_config)
        self.feat_map = nn.Linear(self.bert.hidden_size, hidden_dim)
        backbone = SwinTransformer(embed_dim=swin_embed_dim, depths=swin_depths, num_heads=swin_num_heads,
                                   window_size=swin_window_size, out_indices=(1, 2, 3))
        chans = backbone.num_features[1:]
        projs = [nn.Sequential(nn.Conv2d(c, hidden_dim, 1), nn.GroupNorm(32, hidden_dim)) for c in chans]
        projs.append(nn.Sequential(nn.Conv2d(chans[-1], hidden_dim, 3, 2, 1), nn.GroupNorm(32, hidden_dim)))
        self.input_proj = nn.ModuleList(projs)
        self.backbone = backbone  # registered after input_proj: the official key order
        box = MLP(in_dim=hidden_dim, hidden_dim=hidden_dim, out_dim=4, num_layers=3)
        nn.init.zeros_(box.layers[-1].weight)
        nn.init.zeros_(box.layers[-1].bias)
        self.bbox_embed = nn.ModuleList([box for _ in range(dec_layers)])  # shared, as the official model
        self.transformer.decoder.bbox_embed = self.bbox_embed

    def encode_text(self, input_ids, text_block_mask, position_ids, token_type_ids=None) -> torch.Tensor:
        return self.feat_map(self.bert(input_ids, text_block_mask, position_ids, token_type_ids))

    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor, input_ids: torch.Tensor,
                text_token_mask: torch.Tensor, text_block_mask: torch.Tensor, position_ids: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, return_intermediate: bool = False,
                backbone_features: Optional[list[torch.Tensor]] = None,
                text_features: Optional[torch.Tensor] = None) -> GroundingDINOOutput:
        """pixel_values [B,3,H,W]; pixel_mask bool [B,H,W] (True = pad); text tensors [B,T] / [B,T,T]
        (T <= max_text_len; text_block_mask True = may attend; text_token_mask True = real token).
        ``return_intermediate`` also returns the per-layer and encoder-proposal outputs training needs.
        ``backbone_features``: ``self.backbone(pixel_values)`` computed once and reused (prompt chunks).
        ``text_features``: ``self.encode_text(...)`` of these text tensors, computed once and reused
        (one vocabulary, many images)."""
        if input_ids.shape[1] > self.max_text_len:
            raise ValueError(f"text longer than {self.max_text_len} tokens; split the prompt")
        if text_features is None:
            text = self.encode_text(input_ids, text_block_mask, position_ids, token_type_ids)
        else:
            text = text_features
        text_token_mask = text_token_mask.bool()
        feats = self.backbone(pixel_values) if backbone_features is None else backbone_features
        srcs, masks = [], []
        for proj, f in zip(self.input_proj, feats):
            srcs.append(proj(f))
        srcs.append(self.input_proj[3](feats[-1]))
        for s in srcs:
            masks.append(F.interpolate(pixel_mask[None].float(), size=s.shape[-2:]).to(torch.bool)[0])
        tr = self.transformer
        flat, mflat, pflat, shapes = [], [], [], []
        for lvl, (s, m) in enumerate(zip(srcs, masks)):
            shapes.append(s.shape[-2:])
            pos = image_position_embedding(m).to(s.dtype)
            flat.append(s.flatten(2).transpose(1, 2))
            mflat.append(m.flatten(1))
            pflat.append(pos.flatten(2).transpose(1, 2) + tr.level_embed[lvl].view(1, 1, -1))
        src, mask_flat, pos_flat = torch.cat(flat, 1), torch.cat(mflat, 1), torch.cat(pflat, 1)
        spatial_shapes = torch.as_tensor([list(s) for s in shapes], dtype=torch.long, device=src.device)
        valid_ratios = torch.stack([valid_ratio(m) for m in masks], 1)
        memory, text = tr.encoder(src, pos_flat, spatial_shapes, valid_ratios, mask_flat, text, ~text_token_mask,
                                  position_ids, text_block_mask)
        out_mem, proposals = encoder_proposals(memory, mask_flat, spatial_shapes)
        out_mem = tr.enc_output_norm(tr.enc_output(out_mem))
        enc_logits = contrastive_logits(out_mem, text, text_token_mask, self.max_text_len)
        coords = tr.enc_out_bbox_embed(out_mem) + proposals
        # min(): only an extremely thin image (e.g. 1 x 5000) has fewer feature tokens than queries
        topk = torch.topk(enc_logits.max(-1)[0], min(tr.num_queries, enc_logits.shape[1]), dim=1)[1]
        refpoints = torch.gather(coords, 1, topk.unsqueeze(-1).expand(-1, -1, 4)).detach()
        tgt = tr.tgt_embed.weight[None, : topk.shape[1]].expand(src.shape[0], -1, -1)
        hs, refs = tr.decoder(tgt, refpoints, memory, mask_flat, spatial_shapes, valid_ratios, text, ~text_token_mask)
        boxes = (self.bbox_embed[-1](hs[-1]) + inverse_sigmoid(refs[-2])).sigmoid()
        logits = contrastive_logits(hs[-1], text, text_token_mask, self.max_text_len)
        out = GroundingDINOOutput(pred_logits=logits, pred_boxes=boxes, text_token_mask=text_token_mask)
        if return_intermediate:
            n = len(hs)
            out.layer_boxes = [(self.bbox_embed[i](hs[i]) + inverse_sigmoid(refs[i])).sigmoid() for i in range(n - 1)]
            out.layer_boxes.append(boxes)
            out.layer_logits = [contrastive_logits(h, text, text_token_mask, self.max_text_len) for h in hs[:-1]]
            out.layer_logits.append(logits)
            idx = topk.unsqueeze(-1)
            out.enc_logits = torch.gather(enc_logits, 1, idx.expand(-1, -1, enc_logits.shape[-1]))
            out.enc_boxes = torch.gather(coords, 1, idx.expand(-1, -1, 4)).sigmoid()
        return out


BERT_BASE_UNCASED = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2,
                         hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0)


def build_gdino_swint_ogc(**overrides) -> GroundingDINO:
    """Official GroundingDINO_SwinT_OGC: Swin-T (96, 2-2-6-2, 3-6-12-24, window 7) + bert-base-uncased."""
    kw = dict(swin_embed_dim=96, swin_depths=(2, 2, 6, 2), swin_num_heads=(3, 6, 12, 24), swin_window_size=7,
              bert_config=dict(BERT_BASE_UNCASED), hidden_dim=256, nheads=8, enc_layers=6, dec_layers=6,
              dim_feedforward=2048, num_queries=900, num_feature_levels=4, enc_n_points=4, dec_n_points=4)
    kw.update(overrides)
    return GroundingDINO(**kw)


def build_gdino_swinb_cogcoor(**overrides) -> GroundingDINO:
    """Official GroundingDINO_SwinB_cogcoor: Swin-B (128, 2-2-18-2, 4-8-16-32, window 12) + bert-base-uncased."""
    kw = dict(swin_embed_dim=128, swin_depths=(2, 2, 18, 2), swin_num_heads=(4, 8, 16, 32), swin_window_size=12,
              bert_config=dict(BERT_BASE_UNCASED), hidden_dim=256, nheads=8, enc_layers=6, dec_layers=6,
              dim_feedforward=2048, num_queries=900, num_feature_levels=4, enc_n_points=4, dec_n_points=4)
    kw.update(overrides)
    return GroundingDINO(**kw)


def build_gdino_tiny(*, vocab_size: int = 30522, swin_embed_dim: int = 16, swin_depths: Sequence[int] = (1, 1, 2, 1),
                     swin_num_heads: Sequence[int] = (1, 2, 4, 8), swin_window_size: int = 7, bert_hidden: int = 64,
                     bert_layers: int = 2, bert_heads: int = 2, bert_ffn: int = 128, nheads: int = 4,
                     enc_layers: int = 1, dec_layers: int = 2, dim_feedforward: int = 128,
                     num_queries: int = 30) -> GroundingDINO:
    """Tiny random configuration (fixture A's sizes by default) for tests and smoke runs."""
    bert = dict(BERT_BASE_UNCASED, vocab_size=vocab_size, hidden_size=bert_hidden, num_hidden_layers=bert_layers,
                num_attention_heads=bert_heads, intermediate_size=bert_ffn)
    return GroundingDINO(swin_embed_dim=swin_embed_dim, swin_depths=swin_depths, swin_num_heads=swin_num_heads,
                         swin_window_size=swin_window_size, bert_config=bert, nheads=nheads, enc_layers=enc_layers,
                         dec_layers=dec_layers, dim_feedforward=dim_feedforward, num_queries=num_queries)


def build_from_official_config(config: dict, bert_config: dict) -> GroundingDINO:
    """Build from an official-style config dict (fixture ``meta.config`` with ``swin_*`` keys)."""
    return GroundingDINO(swin_embed_dim=config["swin_embed_dim"], swin_depths=config["swin_depths"],
                         swin_num_heads=config["swin_num_heads"], swin_window_size=config["swin_window_size"],
                         bert_config=bert_config, hidden_dim=config.get("hidden_dim", 256),
                         nheads=config["nheads"], enc_layers=config["enc_layers"], dec_layers=config["dec_layers"],
                         dim_feedforward=config["dim_feedforward"], num_queries=config["num_queries"],
                         num_feature_levels=config.get("num_feature_levels", 4),
                         enc_n_points=config.get("enc_n_points", 4), dec_n_points=config.get("dec_n_points", 4),
                         max_text_len=config.get("max_text_len", MAX_TEXT_LEN))
