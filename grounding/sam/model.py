"""SAM models built from the official ``segment_anything`` modules, one short function per size.

Nothing is loaded here: a builder returns a randomly initialised
:class:`segment_anything.modeling.Sam`; :class:`grounding.sam.SAMMaskHead` loads the weights.
The official sizes are those of ``segment_anything.build_sam``; ``tiny`` is for tests.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from torch import nn

from .weights import INPUT_SIZE, PIXEL_MEAN_RGB, PIXEL_STD_RGB


def build_sam(*, encoder_embed_dim: int, encoder_depth: int, encoder_num_heads: int,
              encoder_global_attn_indexes: Sequence[int], image_size: int = INPUT_SIZE,
              patch_size: int = 16, window_size: int = 14, encoder_mlp_ratio: float = 4.0,
              prompt_embed_dim: int = 256, mask_in_chans: int = 16, decoder_depth: int = 2,
              decoder_mlp_dim: int = 2048, decoder_num_heads: int = 8, num_multimask_outputs: int = 3,
              iou_head_depth: int = 3, iou_head_hidden_dim: int = 256,
              pixel_mean: Sequence[float] = PIXEL_MEAN_RGB,
              pixel_std: Sequence[float] = PIXEL_STD_RGB) -> Sam:
    """Any SAM configuration (defaults: the official decoder and input of every released model)."""
    if image_size % patch_size:
        raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
    grid = image_size // patch_size
    if any(not 0 <= i < encoder_depth for i in encoder_global_attn_indexes):
        raise ValueError(f"encoder_global_attn_indexes {tuple(encoder_global_attn_indexes)} must lie "
                         f"in [0, {encoder_depth})")
    if prompt_embed_dim % 8:
        raise ValueError(f"prompt_embed_dim must be a multiple of 8 (got {prompt_embed_dim})")
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=encoder_depth, embed_dim=encoder_embed_dim, img_size=image_size,
            mlp_ratio=encoder_mlp_ratio, norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=encoder_num_heads, patch_size=patch_size, qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=tuple(encoder_global_attn_indexes), window_size=window_size,
            out_chans=prompt_embed_dim),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_embed_dim, image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size), mask_in_chans=mask_in_chans),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=num_multimask_outputs,
            transformer=TwoWayTransformer(depth=decoder_depth, embedding_dim=prompt_embed_dim,
                                          mlp_dim=decoder_mlp_dim, num_heads=decoder_num_heads),
            transformer_dim=prompt_embed_dim, iou_head_depth=iou_head_depth,
            iou_head_hidden_dim=iou_head_hidden_dim),
        pixel_mean=list(pixel_mean), pixel_std=list(pixel_std))


def build_sam_vit_b(*, image_size: int = INPUT_SIZE) -> Sam:
    return build_sam(encoder_embed_dim=768, encoder_depth=12, encoder_num_heads=12,
                     encoder_global_attn_indexes=(2, 5, 8, 11), image_size=image_size)


def build_sam_vit_l(*, image_size: int = INPUT_SIZE) -> Sam:
    return build_sam(encoder_embed_dim=1024, encoder_depth=24, encoder_num_heads=16,
                     encoder_global_attn_indexes=(5, 11, 17, 23), image_size=image_size)


def build_sam_vit_h(*, image_size: int = INPUT_SIZE) -> Sam:
    return build_sam(encoder_embed_dim=1280, encoder_depth=32, encoder_num_heads=16,
                     encoder_global_attn_indexes=(7, 15, 23, 31), image_size=image_size)


def build_sam_tiny(*, image_size: int = 128, patch_size: int = 16, window_size: int = 4,
                   encoder_embed_dim: int = 32, encoder_depth: int = 2, encoder_num_heads: int = 2,
                   encoder_global_attn_indexes: Sequence[int] = (1,), prompt_embed_dim: int = 32,
                   mask_in_chans: int = 4, decoder_mlp_dim: int = 64, decoder_num_heads: int = 2,
                   iou_head_hidden_dim: int = 32) -> Sam:
    """A ~0.1M-parameter SAM for tests (same modules and dataflow as the real ones)."""
    return build_sam(encoder_embed_dim=encoder_embed_dim, encoder_depth=encoder_depth,
                     encoder_num_heads=encoder_num_heads,
                     encoder_global_attn_indexes=encoder_global_attn_indexes, image_size=image_size,
                     patch_size=patch_size, window_size=window_size, prompt_embed_dim=prompt_embed_dim,
                     mask_in_chans=mask_in_chans, decoder_mlp_dim=decoder_mlp_dim,
                     decoder_num_heads=decoder_num_heads, iou_head_hidden_dim=iou_head_hidden_dim)


BUILDERS = {"vit_b": build_sam_vit_b, "vit_l": build_sam_vit_l, "vit_h": build_sam_vit_h,
            "tiny": build_sam_tiny}
