"""RAM++ (Recognize Anything Plus) model and its build functions.

Dataflow (official ``RAM_plus.generate_tag``; see ``shared/parity/ram_plus/NOTES.md``):
Swin encoder (mean "CLS" token first) -> ``image_proj`` to 512 -> per-image softmax reweighting of
each tag's description embeddings (learned temperature ``exp(reweight_scale)``) -> ``wordvec_proj``
+ ReLU -> cross-attention-only decoder over the image tokens -> ``fc`` -> one logit per tag.
Thresholding, ``delete_tag_index`` and tag names are post-processing (see ``tagger.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..recognize_anything.official_config import head_kwargs, swin_kwargs
from ..recognize_anything.swin import SwinEncoder
from ..recognize_anything.tagging_head import TaggingDecoder

#: CLIP text width of the description embeddings (hard-coded in the official model).
EMBED_DIM = 512


@dataclass
class RAMPlusOutput:
    """Closed-set output of :meth:`RAMPlus.forward`.

    Attributes:
        logits: ``float [B, C]``, one logit per tag of the model's tag list (list order).
        image_embeds: ``float [B, 1 + L, 512]``, projected image tokens (token 0 = mean token).
    """

    logits: torch.Tensor
    image_embeds: torch.Tensor


class RAMPlus(nn.Module):
    """RAM++ image tagger. Input: normalised ``[B, 3, S, S]`` images (see ``preprocess.py``)."""

    def __init__(self, *, image_size: int, embed_dim: int, depths: Sequence[int], num_heads: Sequence[int],
                 window_size: int, patch_size: int = 4, num_classes: int, descriptions_per_tag: int = 51,
                 decoder_hidden_size: int, decoder_layers: int, decoder_heads: int,
                 decoder_intermediate_size: int, decoder_layer_norm_eps: float = 1e-12,
                 decoder_hidden_act: str = "gelu") -> None:
        super().__init__()
        if num_classes < 1 or descriptions_per_tag < 1:
            raise ValueError(f"num_classes ({num_classes}) and descriptions_per_tag "
                             f"({descriptions_per_tag}) must be positive")
        self.num_classes = num_classes
        self.descriptions_per_tag = descriptions_per_tag
        self.image_size = image_size
        self.label_embed = nn.Parameter(F.normalize(torch.randn(num_classes * descriptions_per_tag, EMBED_DIM),
                                                    dim=-1))
        self.reweight_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
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

        Linear ``W ~ N(0, 1/in)``, zero bias; ``wordvec_proj`` ``W ~ N(0, 1)`` (the reweighted
        description means are short vectors, norm ~ 1/sqrt(D)) so tag queries differ visibly;
        ``fc`` ``W ~ N(0, 4/in)`` so that the logits spread with std ~2.
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

    def reweight(self, image_embeds: torch.Tensor, label_embed: torch.Tensor,
                 descriptions_per_tag: int) -> torch.Tensor:
        """Per-image weighted sum of each tag's description embeddings.

        Args:
            image_embeds: ``[B, 1 + L, 512]`` (token 0 is the query).
            label_embed: ``[K * D, 512]``, class-major (tag k owns rows ``k*D .. k*D+D-1``).
            descriptions_per_tag: ``D``.
        Returns:
            ``[B, K, 512]``; the weights are ``softmax_D(exp(reweight_scale) * cls/|cls| . e)``.
        """
        rows, width = label_embed.shape
        if descriptions_per_tag < 1 or rows % descriptions_per_tag or width != EMBED_DIM:
            raise ValueError(f"label_embed {list(label_embed.shape)} is not [K * {descriptions_per_tag}, "
                             f"{EMBED_DIM}]")
        cls = image_embeds[:, 0]
        cls = cls / cls.norm(dim=-1, keepdim=True)
        sims = (self.reweight_scale.exp() * cls) @ label_embed.t()
        weights = sims.view(cls.shape[0], -1, descriptions_per_tag).softmax(dim=-1)
        values = label_embed.view(-1, descriptions_per_tag, width)
        return torch.einsum("bkd,kdc->bkc", weights, values.to(weights.dtype))

    def tag_logits(self, image_embeds: torch.Tensor, label_embed: Optional[torch.Tensor] = None,
                   descriptions_per_tag: Optional[int] = None) -> torch.Tensor:
        """Logits ``[B, K]`` for the tags described by ``label_embed`` (default: the model's own)."""
        if label_embed is None:
            label_embed, descriptions_per_tag = self.label_embed, self.descriptions_per_tag
        elif descriptions_per_tag is None:
            raise ValueError("descriptions_per_tag is required with a label_embed")
        queries = F.relu(self.wordvec_proj(self.reweight(image_embeds, label_embed, descriptions_per_tag)))
        return self.fc(self.tagging_head(queries, image_embeds)).squeeze(-1)

    def forward(self, images: torch.Tensor) -> RAMPlusOutput:
        image_embeds = self.encode_image(images)
        return RAMPlusOutput(logits=self.tag_logits(image_embeds), image_embeds=image_embeds)


def build_ram_plus_swin_l(*, image_size: int = 384, num_classes: int = 4585,
                          descriptions_per_tag: int = 51) -> RAMPlus:
    """The official RAM++ size (``ram_plus_swin_large_14m``): Swin-L, 2-layer 768-wide decoder."""
    return RAMPlus(image_size=image_size, embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48),
                   window_size=12 if image_size == 384 else 7, num_classes=num_classes,
                   descriptions_per_tag=descriptions_per_tag, decoder_hidden_size=768, decoder_layers=2,
                   decoder_heads=4, decoder_intermediate_size=3072)


def build_ram_plus_tiny(*, image_size: int = 96, embed_dim: int = 32, depths: Sequence[int] = (1, 1, 1, 1),
                        num_heads: Sequence[int] = (1, 2, 4, 8), window_size: int = 6, num_classes: int = 32,
                        descriptions_per_tag: int = 51, decoder_hidden_size: int = 64, decoder_layers: int = 2,
                        decoder_heads: int = 2, decoder_intermediate_size: int = 128,
                        decoder_layer_norm_eps: float = 1e-12, decoder_hidden_act: str = "gelu",
                        patch_size: int = 4) -> RAMPlus:
    """A tiny RAM++ for tests and the random pipeline (96 px: token grids 24, 12, 6, 3)."""
    return RAMPlus(image_size=image_size, embed_dim=embed_dim, depths=depths, num_heads=num_heads,
                   window_size=window_size, num_classes=num_classes, descriptions_per_tag=descriptions_per_tag,
                   decoder_hidden_size=decoder_hidden_size, decoder_layers=decoder_layers,
                   decoder_heads=decoder_heads, decoder_intermediate_size=decoder_intermediate_size,
                   decoder_layer_norm_eps=decoder_layer_norm_eps, decoder_hidden_act=decoder_hidden_act,
                   patch_size=patch_size)


def model_kwargs_from_official(meta: dict) -> dict:
    """:class:`RAMPlus` kwargs from an official-style config (``swin_config``, ``q2l_config``, ...).

    ``meta`` holds ``swin_config`` (``image_res``, ``window_size``, ``embed_dim``, ``depths``,
    ``num_heads``, optionally ``vision_width``), ``q2l_config`` (BERT config), ``num_class`` and
    optionally ``des_per_class``. A ``vision_width`` other than the Swin output width, which the
    official model cannot run either, is a ``ValueError``.
    """
    try:
        swin, q2l, classes = meta["swin_config"], meta["q2l_config"], int(meta["num_class"])
        per_tag = int(meta.get("des_per_class", 51))
    except (KeyError, TypeError) as e:
        raise ValueError(f"official config lacks {e}") from None
    return dict(**swin_kwargs(swin), num_classes=classes, descriptions_per_tag=per_tag, **head_kwargs(q2l))
