"""Tag2Text: image tagger (3429 tags) and tag-guided captioner, and its build functions.

Dataflow (official ``Tag2Text.generate``; see ``shared/parity/tag2text/NOTES.md``): Swin-B encoder (mean
"CLS" token first, no projection) -> tagging head over learned tag queries (``label_embed``) -> per-class
``fc`` (:class:`GroupWiseLinear`) -> one logit per tag. For captions, the tag string (``"t1 | t2 ..."``,
tokenized, ``[CLS]`` -> ``[ENC]``) runs through ``tag_encoder`` (BERT cross-attending to the image tokens),
and ``text_decoder`` (causal BERT cross-attending to the tag encoding) generates after the prompt
``[DEC] a picture of``. The tag encoder's first layers share the tagging head's parameters (official tie).
Thresholds, tag strings, tokenization and generation are outside ``forward`` (``tagger.py``,
``tokenizer.py``, ``generation.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..recognize_anything.bert import BertSize, TextDecoder, TextModel, padding_mask, tie_tagging_head
from ..recognize_anything.official_config import head_kwargs, swin_kwargs
from ..recognize_anything.swin import SwinEncoder
from ..recognize_anything.tagging_head import TaggingDecoder


@dataclass
class Tag2TextOutput:
    """Tagging output of :meth:`Tag2Text.forward` (captions come from ``captioning.generate``).

    Attributes:
        logits: ``float [B, C]``, one logit per tag of the model's tag list (list order).
        image_embeds: ``float [B, 1 + L, vision_width]``, image tokens (token 0 = mean token).
    """

    logits: torch.Tensor
    image_embeds: torch.Tensor


class GroupWiseLinear(nn.Module):
    """One weight vector and bias per class: ``logits[b, c] = sum_d W[0, c, d] * x[b, c, d] + b[0, c]``."""

    def __init__(self, *, num_classes: int, hidden_size: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_size)
        self.W = nn.Parameter(torch.empty(1, num_classes, hidden_size).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.empty(1, num_classes).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.W * x).sum(-1) + self.b


class Tag2Text(nn.Module):
    """Tag2Text. Input: normalised ``[B, 3, S, S]`` images (``recognize_anything/preprocess.py``).

    ``decoder_*``: the tagging head (official ``q2l_config``); ``text_*``: the tag encoder and the text decoder
    (official ``med_config``). The head's layers share the tag encoder's first layers, so their hidden and
    intermediate sizes must agree.
    """

    def __init__(self, *, image_size: int, embed_dim: int, depths: Sequence[int], num_heads: Sequence[int],
                 window_size: int, patch_size: int = 4, num_classes: int, decoder_hidden_size: int,
                 decoder_layers: int, decoder_heads: int, decoder_intermediate_size: int,
                 decoder_layer_norm_eps: float = 1e-12, decoder_hidden_act: str = "gelu", text_vocab_size: int,
                 text_hidden_size: int, text_layers: int, text_heads: int, text_intermediate_size: int,
                 text_max_positions: int = 512, text_layer_norm_eps: float = 1e-12,
                 text_hidden_act: str = "gelu") -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if (decoder_hidden_size, decoder_intermediate_size) != (text_hidden_size, text_intermediate_size):
            raise ValueError(f"the tagging head ({decoder_hidden_size} hidden, {decoder_intermediate_size} "
                             f"intermediate) shares the tag encoder's layers ({text_hidden_size}, "
                             f"{text_intermediate_size}): the sizes must agree")
        self.num_classes, self.image_size = num_classes, image_size
        text = BertSize(vocab_size=text_vocab_size, hidden_size=text_hidden_size, num_layers=text_layers,
                        num_heads=text_heads, intermediate_size=text_intermediate_size,
                        max_position_embeddings=text_max_positions, layer_norm_eps=text_layer_norm_eps,
                        hidden_act=text_hidden_act)
        self.text_size = text
        self.visual_encoder = SwinEncoder(image_size=image_size, patch_size=patch_size, embed_dim=embed_dim,
                                          depths=depths, num_heads=num_heads, window_size=window_size)
        width = self.visual_encoder.num_features
        self.tag_encoder = TextModel(size=text, encoder_width=width)
        self.text_decoder = TextDecoder(size=text, encoder_width=text_hidden_size)
        self.tagging_head = TaggingDecoder(hidden_size=decoder_hidden_size, num_layers=decoder_layers,
                                           num_heads=decoder_heads, intermediate_size=decoder_intermediate_size,
                                           encoder_width=width, layer_norm_eps=decoder_layer_norm_eps,
                                           hidden_act=decoder_hidden_act)
        self.label_embed = nn.Embedding(num_classes, decoder_hidden_size)
        self.fc = GroupWiseLinear(num_classes=num_classes, hidden_size=decoder_hidden_size)
        self._init_random()
        tie_tagging_head(self.tag_encoder.encoder.layer, self.tagging_head.encoder.layer)

    @torch.no_grad()
    def _init_random(self) -> None:
        """Random init for the tiny random pipeline (checkpoints overwrite it): Linear ``W ~ N(0, 1/in)``, zero
        bias; embeddings ``N(0, 1)``; the decoder's attention outputs scaled by 0.3 (else random weights repeat
        one token forever); ``fc`` as the official ``GroupWiseLinear`` (uniform, ``1/sqrt(hidden)``)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=m.in_features ** -0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight)
        for layer in self.text_decoder.bert.encoder.layer:
            layer.attention.output.dense.weight.mul_(0.3)
            layer.crossattention.output.dense.weight.mul_(0.3)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` -> image tokens ``[B, 1 + L, vision_width]`` (token 0 = mean token)."""
        return self.visual_encoder(images)

    def tag_logits(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C]`` of the model's tags."""
        queries = self.label_embed.weight.unsqueeze(0).expand(image_embeds.shape[0], -1, -1)
        return self.fc(self.tagging_head(queries, image_embeds))

    def forward(self, images: torch.Tensor) -> Tag2TextOutput:
        image_embeds = self.encode_image(images)
        return Tag2TextOutput(logits=self.tag_logits(image_embeds), image_embeds=image_embeds)

    def encode_tags(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    image_embeds: torch.Tensor) -> torch.Tensor:
        """Tag tokens ``[N, T]`` (``[ENC]`` first; mask 1 = token, 0 = padding) cross-attending to the rows of
        ``image_embeds [N, 1 + L, W]`` -> ``[N, T, hidden]``."""
        if input_ids.shape[0] != image_embeds.shape[0]:
            raise ValueError(f"{input_ids.shape[0]} tag sequences for {image_embeds.shape[0]} images")
        mask = padding_mask(attention_mask, image_embeds.dtype)
        hidden, _ = self.tag_encoder(input_ids, self_mask=mask,
                                     cross_kv=self.tag_encoder.cross_key_values(image_embeds))
        return hidden


def build_tag2text_swin_b(*, image_size: int = 384, num_classes: int = 3429, text_vocab_size: int = 30524) -> Tag2Text:
    """The official Tag2Text size (``tag2text_swin_14m``): Swin-B (window 12 at 384 px, 7 at 224 px), 2-layer
    4-head tagging head, 12-layer BERT-base tag encoder and text decoder over bert-base-uncased + 2 tokens."""
    if image_size not in (224, 384):
        raise ValueError(f"the official Tag2Text Swin-B runs at 224 or 384 px, got {image_size}")
    return Tag2Text(image_size=image_size, embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
                    window_size=12 if image_size == 384 else 7, num_classes=num_classes, decoder_hidden_size=768,
                    decoder_layers=2, decoder_heads=4, decoder_intermediate_size=3072, text_vocab_size=text_vocab_size,
                    text_hidden_size=768, text_layers=12, text_heads=12, text_intermediate_size=3072)


def build_tag2text_tiny(*, image_size: int = 96, embed_dim: int = 32, depths: Sequence[int] = (1, 1, 1, 1),
                        num_heads: Sequence[int] = (1, 2, 4, 8), window_size: int = 6, patch_size: int = 4,
                        num_classes: int = 32, decoder_hidden_size: int = 48, decoder_layers: int = 2,
                        decoder_heads: int = 2, decoder_intermediate_size: int = 96,
                        decoder_layer_norm_eps: float = 1e-12, decoder_hidden_act: str = "gelu",
                        text_vocab_size: int = 128, text_hidden_size: int = 48, text_layers: int = 3,
                        text_heads: int = 4, text_intermediate_size: int = 96, text_max_positions: int = 512,
                        text_layer_norm_eps: float = 1e-12, text_hidden_act: str = "gelu") -> Tag2Text:
    """A tiny Tag2Text for tests and the random pipeline (96 px: token grids 24, 12, 6, 3; 48-wide text)."""
    return Tag2Text(image_size=image_size, embed_dim=embed_dim, depths=depths, num_heads=num_heads,
                    window_size=window_size, patch_size=patch_size, num_classes=num_classes,
                    decoder_hidden_size=decoder_hidden_size, decoder_layers=decoder_layers,
                    decoder_heads=decoder_heads, decoder_intermediate_size=decoder_intermediate_size,
                    decoder_layer_norm_eps=decoder_layer_norm_eps, decoder_hidden_act=decoder_hidden_act,
                    text_vocab_size=text_vocab_size, text_hidden_size=text_hidden_size, text_layers=text_layers,
                    text_heads=text_heads, text_intermediate_size=text_intermediate_size,
                    text_max_positions=text_max_positions, text_layer_norm_eps=text_layer_norm_eps,
                    text_hidden_act=text_hidden_act)


def model_kwargs_from_official(config: dict) -> dict:
    """:class:`Tag2Text` kwargs from an official-style config: ``swin_config``, ``q2l_config``, ``med_config``
    and ``tag_list`` (or ``num_class``), as the parity fixture's ``config`` holds them."""
    try:
        swin, q2l, med = config["swin_config"], config["q2l_config"], config["med_config"]
        classes = int(config["num_class"]) if "num_class" in config else len(config["tag_list"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"official config lacks {e}") from None
    text = BertSize.from_official(med)
    return dict(**swin_kwargs(swin), num_classes=classes, **head_kwargs(q2l), text_vocab_size=text.vocab_size,
                text_hidden_size=text.hidden_size, text_layers=text.num_layers, text_heads=text.num_heads,
                text_intermediate_size=text.intermediate_size, text_max_positions=text.max_position_embeddings,
                text_layer_norm_eps=text.layer_norm_eps, text_hidden_act=text.hidden_act)
