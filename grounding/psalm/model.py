"""PSALM: a Swin + conv projector turns the image into tokens for Phi (transformers' ``PhiModel``); the prompt's
mask queries, class names, referring text and region features ride along in the same sequence; Mask2Former's
pixel decoder and a masked-attention decoder seeded with the LLM's query states predict masks and scores.

One forward pass per (image, prompt); no text is generated. Pre- and post-processing live in
:mod:`.preprocess` and :mod:`.postprocess`; :class:`.predictor.PSALMPredictor` ties them together.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..groundingdino.swin import SwinTransformer
from .config import PSALMConfig
from .decoder import LayerPrediction, MaskDecoder
from .pixel_decoder import PixelDecoder, PixelFeatures
from .prompts import CLS, IMAGE, REFER, REGION, SEG, PromptIds
from .vision import SwinProjector, pool_region_features


@dataclass(frozen=True)
class ImageEncoding:
    """Everything PSALM computes from the image alone (reused by every prompt on it).

    Attributes:
        features: Swin res2..res5 ``[B, C_i, S/4/2^i, S/4/2^i]``.
        image_tokens: ``[B, (S/64)^2, Hd]`` (the ``<image>`` embeddings).
        pixel: the pixel decoder's mask features and multi-scale memory.
    """

    features: tuple[torch.Tensor, ...]
    image_tokens: torch.Tensor
    pixel: PixelFeatures

    def __len__(self) -> int:
        return self.image_tokens.shape[0]

    def item(self, i: int) -> "ImageEncoding":
        """Image ``i`` of the batch (batch dimension kept, size 1)."""
        s = slice(i, i + 1)
        return ImageEncoding(features=tuple(f[s] for f in self.features), image_tokens=self.image_tokens[s],
                             pixel=PixelFeatures(mask_features=self.pixel.mask_features[s],
                                                 multi_scale=tuple(m[s] for m in self.pixel.multi_scale)))


@dataclass(frozen=True)
class SplicedPrompt:
    """The LLM input of one prompt: ``inputs_embeds [1, L, Hd]`` and the rows (positions) of each placeholder's
    embeddings: ``seg_rows [Q]``, ``class_rows`` (one index tensor per class), ``refer_rows``, ``region_rows [K]``."""

    inputs_embeds: torch.Tensor
    seg_rows: torch.Tensor
    class_rows: Optional[tuple[torch.Tensor, ...]] = None
    refer_rows: Optional[torch.Tensor] = None
    region_rows: Optional[torch.Tensor] = None


@dataclass(frozen=True)
class PSALMOutput:
    """One forward pass (batch size 1).

    Attributes:
        mask_logits: ``[1, Q, S/4, S/4]`` of the last decoder stage.
        seg_logits: ``[1, Q, 1]`` referring score logits, or ``None``.
        class_logits: ``[1, Q, C]`` category logits (last class: background), or ``None``.
        region_logits: ``[K, Q]`` region-to-query logits, or ``None``.
        layers: every decoder stage's :class:`LayerPrediction` (``decoder_layers + 1``; the last is the above).
        hidden_states: the LLM's last hidden states ``[1, L, Hd]``; spliced: its input.
        queries / seg_embedding / class_embedding / region_embedding: the projected LLM states the decoder got
            (``[1, Q, D]``, ``[1, 1, D]``, ``[1, C, D]``, ``[K, D]``).
    """

    mask_logits: torch.Tensor
    seg_logits: Optional[torch.Tensor]
    class_logits: Optional[torch.Tensor]
    region_logits: Optional[torch.Tensor]
    layers: tuple[LayerPrediction, ...]
    hidden_states: torch.Tensor
    spliced: SplicedPrompt
    queries: torch.Tensor
    seg_embedding: Optional[torch.Tensor] = None
    class_embedding: Optional[torch.Tensor] = None
    region_embedding: Optional[torch.Tensor] = None


class PSALMModel(nn.Module):
    """The network (parameter names: :func:`.convert.convert_state_dict` maps the official ones)."""

    def __init__(self, *, config: PSALMConfig) -> None:
        super().__init__()
        from transformers import PhiModel

        c = self.config = config
        self.vision_tower = SwinTransformer(embed_dim=c.swin_embed_dim, depths=c.swin_depths,
                                            num_heads=c.swin_num_heads, window_size=c.swin_window_size,
                                            out_indices=(0, 1, 2, 3))
        self.mm_projector = SwinProjector(in_channels=c.swin_channels[3], width=c.projector_width,
                                          out_dim=c.hidden_size)
        self.language_model = PhiModel(c.phi_config())
        self.seg_query = nn.Parameter(torch.zeros(c.num_queries, c.hidden_size))
        self.seg_query_projector = nn.Linear(c.hidden_size, c.hidden_dim)
        self.SEG_token_projector = nn.Linear(c.hidden_size, c.hidden_dim)
        self.class_name_projector = nn.Linear(c.hidden_size, c.hidden_dim)
        self.region_projector = nn.Linear(c.hidden_size, c.hidden_dim)
        self.pixel_decoder = PixelDecoder(in_channels=c.swin_channels, conv_dim=c.conv_dim, mask_dim=c.mask_dim,
                                          num_heads=c.num_heads, ffn_dim=c.encoder_ffn_dim,
                                          num_layers=c.encoder_layers, num_points=c.encoder_points)
        self.predictor = MaskDecoder(in_channels=c.conv_dim, dim=c.hidden_dim, num_queries=c.num_queries,
                                     num_heads=c.num_heads, ffn_dim=c.dim_feedforward, num_layers=c.decoder_layers,
                                     mask_dim=c.mask_dim, pre_norm=c.pre_norm, seg_proj=c.seg_proj,
                                     seg_norm=c.seg_norm)

    def encode_image(self, images: torch.Tensor) -> ImageEncoding:
        """``images [B, 3, S, S]`` (normalised, padded) -> :class:`ImageEncoding` (the official code runs the Swin
        twice per call, for the tokens and for the pixel decoder, on the same input: once here)."""
        s = self.config.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(f"images must be [B, 3, {s}, {s}], got {tuple(images.shape)}")
        features = tuple(self.vision_tower(images))
        tokens = self.mm_projector(features[3])
        return ImageEncoding(features=features, image_tokens=tokens, pixel=self.pixel_decoder(features))

    def region_features(self, encoding: ImageEncoding, points: torch.Tensor) -> torch.Tensor:
        """``points [K, P, 2]`` (y/S, x/S) -> one ``<region>`` embedding per region ``[K, Hd]``."""
        return pool_region_features(encoding.image_tokens[0], points.to(encoding.image_tokens.device))

    def splice(self, prompt: PromptIds, image_tokens: torch.Tensor,
               region_features: Optional[torch.Tensor] = None) -> SplicedPrompt:
        """Official ``concat_image_seg_cls_embeds`` for one prompt: placeholders replaced by their embeddings."""
        embed = self.language_model.embed_tokens
        device = embed.weight.device
        ids = prompt.input_ids.to(device)
        if prompt.num_regions and (region_features is None or len(region_features) != prompt.num_regions):
            raise ValueError(f"the prompt has {prompt.num_regions} <region> placeholders: give as many region features")
        parts, rows = [], {"seg": [], "refer": [], "region": [], "cls": []}
        pos, n_cls, n_region, start = 0, 0, 0, 0

        def add(x: torch.Tensor, key: Optional[str] = None) -> None:
            nonlocal pos
            parts.append(x)
            if key is not None:
                rows[key].append(torch.arange(pos, pos + len(x), device=device))
            pos += len(x)

        for i in range(len(ids) + 1):
            if i < len(ids) and ids[i] >= 0:
                continue
            if i > start:
                add(embed(ids[start:i]))
            start = i + 1
            if i == len(ids):
                break
            tag = int(ids[i])
            if tag == IMAGE:
                add(image_tokens.to(embed.weight.dtype))
            elif tag == SEG:
                add(self.seg_query, "seg")
            elif tag == CLS:
                add(embed(prompt.class_ids[n_cls].to(device)), "cls")
                n_cls += 1
            elif tag == REFER:
                add(embed(prompt.refer_ids.to(device)), "refer")
            elif tag == REGION:
                add(region_features[n_region:n_region + 1].to(embed.weight.dtype), "region")
                n_region += 1
            else:
                raise ValueError(f"unknown placeholder id {tag} in the prompt")
        return SplicedPrompt(inputs_embeds=torch.cat(parts)[None], seg_rows=rows["seg"][0],
                             class_rows=tuple(rows["cls"]) or None,
                             refer_rows=rows["refer"][0] if rows["refer"] else None,
                             region_rows=torch.cat(rows["region"]) if rows["region"] else None)

    def decode(self, encoding: ImageEncoding, prompt: PromptIds,
               region_points: Optional[torch.Tensor] = None) -> PSALMOutput:
        """The prompt-dependent part: splice, LLM, query/embedding projections, mask decoder (batch size 1)."""
        if len(encoding) != 1:
            raise ValueError("decode takes one image (ImageEncoding.item(i))")
        regions = self.region_features(encoding, region_points) if region_points is not None else None
        spliced = self.splice(prompt, encoding.image_tokens[0], regions)
        if spliced.inputs_embeds.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"the prompt is {spliced.inputs_embeds.shape[1]} tokens long; PSALM's language model "
                             f"takes at most {self.config.max_position_embeddings} (fewer classes per image)")
        hidden = self.language_model(inputs_embeds=spliced.inputs_embeds).last_hidden_state
        h = hidden[0]
        queries = self.seg_query_projector(h[spliced.seg_rows])[None]
        seg = cls = region = None
        if spliced.refer_rows is not None:
            seg = self.SEG_token_projector(h[spliced.refer_rows].mean(0))[None, None]
        if spliced.class_rows is not None:
            cls = self.class_name_projector(torch.stack([h[r].mean(0) for r in spliced.class_rows]))[None]
        if spliced.region_rows is not None:
            region = self.region_projector(h[spliced.region_rows])
        layers = self.predictor(encoding.pixel.multi_scale, encoding.pixel.mask_features, queries,
                                seg_embedding=seg, class_embedding=cls, region_embedding=region)
        last = layers[-1]
        return PSALMOutput(mask_logits=last.mask_logits, seg_logits=last.seg_logits, class_logits=last.class_logits,
                           region_logits=last.region_logits, layers=tuple(layers), hidden_states=hidden,
                           spliced=spliced, queries=queries, seg_embedding=seg, class_embedding=cls,
                           region_embedding=region)

    def forward(self, images: torch.Tensor, prompt: PromptIds,
                region_points: Optional[torch.Tensor] = None) -> PSALMOutput:
        """``images [1, 3, S, S]`` + one prompt -> :class:`PSALMOutput`."""
        return self.decode(self.encode_image(images), prompt, region_points)


def build_psalm(config: Optional[PSALMConfig] = None, **overrides) -> PSALMModel:
    """The release's architecture (Phi-1.5, Swin-B, 1024 px, 100 queries); keyword arguments override sizes."""
    return PSALMModel(config=(config or PSALMConfig()).replace(**overrides))


def build_psalm_tiny(*, image_size: int = 128, swin_embed_dim: int = 16, swin_depths=(1, 1, 2, 1),
                     swin_num_heads=(1, 2, 2, 4), swin_window_size: int = 7, projector_width: int = 32,
                     vocab_size: int = 259, hidden_size: int = 64, intermediate_size: int = 128,
                     num_hidden_layers: int = 2, num_attention_heads: int = 4, hidden_dim: int = 64,
                     conv_dim: int = 64, mask_dim: int = 64, num_queries: int = 8, num_heads: int = 4,
                     dim_feedforward: int = 128, decoder_layers: int = 3, encoder_layers: int = 1,
                     encoder_ffn_dim: int = 128, **overrides) -> PSALMModel:
    """A tiny PSALM for tests and smoke runs (random weights; the byte tokenizer's 259 ids)."""
    return PSALMModel(config=PSALMConfig(
        image_size=image_size, swin_embed_dim=swin_embed_dim, swin_depths=tuple(swin_depths),
        swin_num_heads=tuple(swin_num_heads), swin_window_size=swin_window_size, projector_width=projector_width,
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads, hidden_dim=hidden_dim,
        conv_dim=conv_dim, mask_dim=mask_dim, num_queries=num_queries, num_heads=num_heads,
        dim_feedforward=dim_feedforward, decoder_layers=decoder_layers, encoder_layers=encoder_layers,
        encoder_ffn_dim=encoder_ffn_dim, **overrides))


#: ``variant`` -> build function
BUILDERS = {"psalm": build_psalm, "tiny": build_psalm_tiny}
