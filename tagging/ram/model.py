"""RAM (Recognize Anything, v1) tagging model and its build functions.

Dataflow (official ``RAM.generate_tag``; see ``shared/parity/ram/NOTES.md``): Swin encoder (mean "CLS"
token first) -> ``image_proj`` to 512 -> tag queries ``relu(wordvec_proj(label_embed))`` (one CLIP text
embedding per tag, no per-image reweighting) -> cross-attention-only tagging head over the image tokens ->
``fc`` -> one logit per tag. The official model also carries Tag2Text's captioning branch (``tag_encoder``,
``text_decoder``), which tagging never uses: it is not built here (``convert.py`` drops its keys).
Thresholding, ``delete_tag_index`` and tag names are post-processing (``tagger.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..recognize_anything.official_config import head_kwargs, swin_kwargs
from ..recognize_anything.swin import SwinEncoder
from ..recognize_anything.tagging_head import TaggingDecoder

#: CLIP text width of the tag embeddings (hard-coded in the official model).
EMBED_DIM = 512


@dataclass
class RAMOutput:
    """Output of :meth:`RAM.forward`.

    Attributes:
        logits: ``float [B, C]``, one logit per tag of the model's tag list (list order).
        image_embeds: ``float [B, 1 + L, 512]``, projected image tokens (token 0 = mean token).
    """

    logits: torch.Tensor
    image_embeds: torch.Tensor


class RAM(nn.Module):
    """RAM image tagger. Input: normalised ``[B, 3, S, S]`` images (see ``recognize_anything/preprocess.py``)."""

    def __init__(self, *, image_size: int, embed_dim: int, depths: Sequence[int], num_heads: Sequence[int],
                 window_size: int, patch_size: int = 4, num_classes: int, decoder_hidden_size: int,
                 decoder_layers: int, decoder_heads: int, decoder_intermediate_size: int,
                 decoder_layer_norm_eps: float = 1e-12, decoder_hidden_act: str = "gelu") -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.image_size = image_size
        self.label_embed = nn.Parameter(F.normalize(torch.randn(num_classes, EMBED_DIM), dim=-1))
        self.visual_encoder = SwinEncoder(image_size=image_size, patch_size=patch_size, embed_dim=embed_dim,
                                          depths=depths, num_heads=num_heads, window_size=window_size)
        self.image_proj = nn.Linear(self.visual_encoder.num_features, EMBED_DIM)
        self.wordvec_proj = (nn.Identity() if decoder_hidden_size == EMBED_DIM
                             else nn.Linear(EMBED_DIM, decoder_hidden_size))
        self.tagging_head = TaggingDecoder(hidden_size=decoder_hidden_size, num_layers=decoder_layers,
                                           num_heads=decoder_heads, intermediate_size=decoder_intermediate_size,
                                           encoder_width=EMBED_DIM, layer_norm_eps=decoder_layer_norm_eps,
                                           hidden_act=decoder_hidden_act)
        self.fc = nn.Linear(decoder_hidden_size, 1)
        self._init_random()

    @torch.no_grad()
    def _init_random(self) -> None:
        """Variance-preserving random init (for the random tiny pipeline; checkpoints overwrite it).

        Linear ``W ~ N(0, 1/in)``, zero bias; ``wordvec_proj`` ``W ~ N(0, 1)`` (the label embeddings are unit
        vectors) so tag queries differ visibly; ``fc`` ``W ~ N(0, 4/in)`` so that the logits spread with std ~2.
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=m.in_features ** -0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if isinstance(self.wordvec_proj, nn.Linear):
            nn.init.normal_(self.wordvec_proj.weight, std=1.0)
        nn.init.normal_(self.fc.weight, std=2 * self.fc.in_features ** -0.5)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` -> projected image tokens ``[B, 1 + L, 512]``."""
        return self.image_proj(self.visual_encoder(images))

    def tag_queries(self, label_embed: torch.Tensor) -> torch.Tensor:
        """``relu(wordvec_proj(label_embed))``: ``[K, 512] -> [K, hidden]``."""
        if label_embed.ndim != 2 or label_embed.shape[1] != EMBED_DIM:
            raise ValueError(f"label_embed {list(label_embed.shape)} is not [K, {EMBED_DIM}]")
        return F.relu(self.wordvec_proj(label_embed))

    def tag_logits(self, image_embeds: torch.Tensor, label_embed: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``[B, K]`` of the tags embedded in ``label_embed [K, 512]`` (default: the model's own)."""
        queries = self.tag_queries(self.label_embed if label_embed is None else label_embed)
        queries = queries.unsqueeze(0).expand(image_embeds.shape[0], -1, -1)
        return self.fc(self.tagging_head(queries, image_embeds)).squeeze(-1)

    def forward(self, images: torch.Tensor) -> RAMOutput:
        image_embeds = self.encode_image(images)
        return RAMOutput(logits=self.tag_logits(image_embeds), image_embeds=image_embeds)


def build_ram_swin_l(*, image_size: int = 384, num_classes: int = 4585) -> RAM:
    """The official RAM size (``ram_swin_large_14m``): Swin-L (window 12 at 384 px, 7 at 224 px), 2-layer
    768-wide tagging head with 4 heads."""
    if image_size not in (224, 384):
        raise ValueError(f"the official RAM Swin-L runs at 224 or 384 px, got {image_size}")
    return RAM(image_size=image_size, embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48),
               window_size=12 if image_size == 384 else 7, num_classes=num_classes, decoder_hidden_size=768,
               decoder_layers=2, decoder_heads=4, decoder_intermediate_size=3072)


def build_ram_tiny(*, image_size: int = 96, embed_dim: int = 32, depths: Sequence[int] = (1, 1, 1, 1),
                   num_heads: Sequence[int] = (1, 2, 4, 8), window_size: int = 6, num_classes: int = 32,
                   decoder_hidden_size: int = 64, decoder_layers: int = 2, decoder_heads: int = 2,
                   decoder_intermediate_size: int = 128, decoder_layer_norm_eps: float = 1e-12,
                   decoder_hidden_act: str = "gelu", patch_size: int = 4) -> RAM:
    """A tiny RAM for tests and the random pipeline (96 px: token grids 24, 12, 6, 3)."""
    return RAM(image_size=image_size, embed_dim=embed_dim, depths=depths, num_heads=num_heads,
               window_size=window_size, num_classes=num_classes, decoder_hidden_size=decoder_hidden_size,
               decoder_layers=decoder_layers, decoder_heads=decoder_heads,
               decoder_intermediate_size=decoder_intermediate_size, decoder_layer_norm_eps=decoder_layer_norm_eps,
               decoder_hidden_act=decoder_hidden_act, patch_size=patch_size)


def model_kwargs_from_official(config: dict) -> dict:
    """:class:`RAM` kwargs from an official-style config: ``swin_config``, ``q2l_config`` and ``tag_list``
    (or ``num_class``), as the parity fixture's ``config`` holds them."""
    try:
        swin, q2l = config["swin_config"], config["q2l_config"]
        classes = int(config["num_class"]) if "num_class" in config else len(config["tag_list"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"official config lacks {e}") from None
    return dict(**swin_kwargs(swin), num_classes=classes, **head_kwargs(q2l))
