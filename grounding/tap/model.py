"""The TAP model (image encoder, prompt encoder, image decoder, text decoder) and its builders.

State_dict keys are the official ones (``pixel_mean``, ``pixel_rsig``, ``image_encoder.*``,
``prompt_encoder.*``, ``image_decoder.*``, ``text_decoder.*``), so official checkpoints load
strictly after :func:`grounding.tap.convert.convert_state_dict`.
"""
from __future__ import annotations

import torch
from torch import nn

from .image_decoder import DecoderOutput, TapImageDecoder
from .image_encoder import TapImageEncoder
from .prompt_encoder import TapPromptEncoder
from .weights import PIXEL_MEAN_BGR, PIXEL_STD_BGR


class TapModel(nn.Module):
    """Tokenize Anything via Prompting. Inputs are BGR; see :mod:`grounding.tap.predictor`."""

    def __init__(self, *, image_encoder: TapImageEncoder, prompt_encoder: TapPromptEncoder,
                 image_decoder: TapImageDecoder, text_decoder: nn.Module, image_size: int,
                 pixel_mean=PIXEL_MEAN_BGR, pixel_std=PIXEL_STD_BGR) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.image_decoder = image_decoder
        self.text_decoder = text_decoder
        self.image_size = image_size
        self.pixel_mean_value = tuple(pixel_mean)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32))
        self.register_buffer("pixel_rsig", torch.tensor(pixel_std, dtype=torch.float32).reciprocal())

    @property
    def dtype(self) -> torch.dtype:
        return self.image_decoder.iou_token.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def normalize(self, images_bgr: torch.Tensor) -> torch.Tensor:
        """``uint8 [B, S, S, 3]`` padded BGR -> ``[B, 3, S, S]`` ``(x - mean) * (1 / std)`` in model dtype."""
        x = images_bgr.to(device=self.device, dtype=self.pixel_mean.dtype)
        x = ((x - self.pixel_mean) * self.pixel_rsig).permute(0, 3, 1, 2)
        return x.to(self.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised ``[B, 3, S, S]`` -> image embeddings ``[B, D, S/16, S/16]``."""
        return self.image_encoder(images)

    def decode(self, image_embeddings: torch.Tensor, coords: torch.Tensor,
               labels: torch.Tensor) -> tuple[torch.Tensor, DecoderOutput]:
        """Prompts (normalised ``coords [N, K, 2]``, ``labels [N, K]``) on ``image_embeddings``.

        Returns the sparse prompt embeddings ``[N, K, D]`` and the :class:`DecoderOutput`.
        """
        h, w = image_embeddings.shape[-2:]
        sparse = self.prompt_encoder(coords.to(self.device), labels.to(self.device))
        pe = self.prompt_encoder.image_pe(h, w)
        return sparse, self.image_decoder(image_embeddings, sparse, pe)


def build_tap(*, encoder_depth: int, encoder_embed_dim: int, encoder_num_heads: int,
              encoder_mlp_ratio: float = 4.0, patch_size: int = 16, window_size: int = 16,
              image_size: int = 1024, embed_dim: int = 256, decoder_depth: int = 2,
              decoder_num_heads: int | None = None, decoder_mlp_dim: int = 2048,
              num_mask_tokens: int = 4, sem_embed_dim: int = 1024, text_embed_dim: int = 512,
              text_num_heads: int | None = None, text_depth: int = 12, text_mlp_ratio: int = 4,
              text_seq_len: int = 40, vocab_size: int = 32000) -> TapModel:
    """Build any TAP configuration (official rules: decoder heads ``embed_dim // 32``, text heads
    ``text_embed_dim // 64`` unless given)."""
    from .text_decoder import TapTextDecoder

    return TapModel(
        image_encoder=TapImageEncoder(depth=encoder_depth, embed_dim=encoder_embed_dim,
                                      num_heads=encoder_num_heads, mlp_ratio=encoder_mlp_ratio,
                                      patch_size=patch_size, window_size=window_size,
                                      image_size=image_size, out_dim=embed_dim),
        prompt_encoder=TapPromptEncoder(embed_dim=embed_dim),
        image_decoder=TapImageDecoder(embed_dim=embed_dim,
                                      num_heads=decoder_num_heads or max(embed_dim // 32, 1),
                                      depth=decoder_depth, mlp_dim=decoder_mlp_dim,
                                      num_mask_tokens=num_mask_tokens, sem_embed_dim=sem_embed_dim),
        text_decoder=TapTextDecoder(depth=text_depth, embed_dim=text_embed_dim,
                                    num_heads=text_num_heads or max(text_embed_dim // 64, 1),
                                    mlp_ratio=text_mlp_ratio, prompt_embed_dim=embed_dim,
                                    max_seq_len=text_seq_len, vocab_size=vocab_size),
        image_size=image_size)


def build_tap_vit_b(*, image_size: int = 1024, vocab_size: int = 32000) -> TapModel:
    return build_tap(encoder_depth=12, encoder_embed_dim=768, encoder_num_heads=12,
                     image_size=image_size, vocab_size=vocab_size)


def build_tap_vit_l(*, image_size: int = 1024, vocab_size: int = 32000) -> TapModel:
    return build_tap(encoder_depth=24, encoder_embed_dim=1024, encoder_num_heads=16,
                     image_size=image_size, vocab_size=vocab_size)


def build_tap_vit_h(*, image_size: int = 1024, vocab_size: int = 32000) -> TapModel:
    return build_tap(encoder_depth=32, encoder_embed_dim=1280, encoder_num_heads=16,
                     image_size=image_size, vocab_size=vocab_size)


def build_tap_tiny(*, image_size: int = 128, encoder_depth: int = 4, encoder_embed_dim: int = 32,
                   encoder_num_heads: int = 2, window_size: int = 4, embed_dim: int = 32,
                   decoder_num_heads: int = 2, decoder_mlp_dim: int = 64, sem_embed_dim: int = 64,
                   text_embed_dim: int = 32, text_num_heads: int = 1, text_depth: int = 1,
                   text_seq_len: int = 12, vocab_size: int = 260) -> TapModel:
    """A small random TAP for CPU tests (128 px input, 8x8 embedding grid, 2x2 windows)."""
    return build_tap(encoder_depth=encoder_depth, encoder_embed_dim=encoder_embed_dim,
                     encoder_num_heads=encoder_num_heads, window_size=window_size,
                     image_size=image_size, embed_dim=embed_dim, decoder_num_heads=decoder_num_heads,
                     decoder_mlp_dim=decoder_mlp_dim, sem_embed_dim=sem_embed_dim,
                     text_embed_dim=text_embed_dim, text_num_heads=text_num_heads,
                     text_depth=text_depth, text_seq_len=text_seq_len, vocab_size=vocab_size)


BUILDERS = {"vit_b": build_tap_vit_b, "vit_l": build_tap_vit_l, "vit_h": build_tap_vit_h,
            "tiny": build_tap_tiny}
