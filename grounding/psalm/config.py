"""PSALM's sizes as one frozen dataclass, and how to read them from the official configuration.

The official model is configured by two things: the LLaVA/Phi ``config.json`` of the checkpoint
(``model_type`` ``llava_phi``: Phi sizes, vocabulary, projector) and a detectron2 yaml for the mask decoder
(``maskformer2_swin_base_384_bs16_50ep.yaml`` in every official eval script; it is not part of the published
checkpoint, so its values are the defaults here). The Swin backbone is hard-coded by ``swin_type``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, Optional

#: ``swin_type`` of the official config -> Swin sizes (``build_swin_b`` / ``build_swin_l``; patch 4, window 12)
SWIN_TYPES = {
    "base": dict(swin_embed_dim=128, swin_depths=(2, 2, 18, 2), swin_num_heads=(4, 8, 16, 32), swin_window_size=12),
    "large": dict(swin_embed_dim=192, swin_depths=(2, 2, 18, 2), swin_num_heads=(6, 12, 24, 48), swin_window_size=12),
}


@dataclass(frozen=True, kw_only=True)
class PSALMConfig:
    """Every size of the model; the defaults are the release (Phi-1.5 + Swin-B, 1024 px, 100 queries).

    Attributes (official name in brackets):
        image_size: square input side S [INPUT.IMAGE_SIZE].
        swin_*: Swin backbone (patch 4, MLP ratio 4, qkv bias).
        projector_width: channels of the conv projector's BasicBlock (2048 hard-coded in ``ResNetSwin``).
        vocab_size ... max_position_embeddings: the Phi language model [config.json].
        hidden_dim: mask decoder width D [MASK_FORMER.HIDDEN_DIM]; conv_dim [SEM_SEG_HEAD.CONVS_DIM];
            mask_dim [SEM_SEG_HEAD.MASK_DIM]; num_queries Q [NUM_OBJECT_QUERIES]; num_heads [NHEADS];
            dim_feedforward [DIM_FEEDFORWARD]; decoder_layers = DEC_LAYERS - 1; encoder_layers
            [TRANSFORMER_ENC_LAYERS]; pre_norm [PRE_NORM]; seg_proj [SEG_PROJ]; seg_norm [SEG_NORM].
        encoder_ffn_dim: the pixel decoder's deformable encoder FFN (1024 hard-coded).
        region_points: points sampled per visual prompt (256 hard-coded).
        pixel_mean / pixel_std: RGB 0-255 normalisation; pad_value: padding of the resized image.
    """

    image_size: int = 1024
    swin_embed_dim: int = 128
    swin_depths: tuple[int, ...] = (2, 2, 18, 2)
    swin_num_heads: tuple[int, ...] = (4, 8, 16, 32)
    swin_window_size: int = 12
    projector_width: int = 2048
    vocab_size: int = 50297
    hidden_size: int = 2048
    intermediate_size: int = 8192
    num_hidden_layers: int = 24
    num_attention_heads: int = 32
    partial_rotary_factor: float = 0.5
    rope_theta: float = 10000.0
    layer_norm_eps: float = 1e-5
    max_position_embeddings: int = 2048
    hidden_dim: int = 256
    conv_dim: int = 256
    mask_dim: int = 256
    num_queries: int = 100
    num_heads: int = 8
    dim_feedforward: int = 2048
    decoder_layers: int = 9
    encoder_layers: int = 6
    encoder_ffn_dim: int = 1024
    encoder_points: int = 4
    pre_norm: bool = False
    seg_proj: bool = True
    seg_norm: bool = False
    region_points: int = 256
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    pad_value: float = 128.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))
        ints = ("image_size", "swin_embed_dim", "swin_window_size", "projector_width", "vocab_size", "hidden_size",
                "intermediate_size", "num_hidden_layers", "num_attention_heads", "max_position_embeddings",
                "hidden_dim", "conv_dim", "mask_dim", "num_queries", "num_heads", "dim_feedforward",
                "encoder_ffn_dim", "encoder_points", "region_points")
        for name in ints + ("decoder_layers", "encoder_layers"):
            v, least = getattr(self, name), 1 if name in ints else 0
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ValueError(f"PSALMConfig.{name} must be an int >= {least} (got {v!r})")
        if len(self.swin_depths) != 4 or len(self.swin_num_heads) != 4:
            raise ValueError("PSALM's Swin has 4 stages (res2..res5): swin_depths and swin_num_heads need 4 entries")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        for name, dim, heads in (("hidden_dim", self.hidden_dim, self.num_heads),
                                 ("conv_dim", self.conv_dim, self.num_heads)):
            if dim % heads:
                raise ValueError(f"{name} ({dim}) must be divisible by num_heads ({heads})")
        if self.conv_dim % 32:
            raise ValueError(f"conv_dim must be a multiple of 32 (GroupNorm(32)), got {self.conv_dim}")
        if self.hidden_dim % 2 or self.conv_dim % 2:
            raise ValueError("hidden_dim and conv_dim must be even (sine position encoding)")

    @property
    def swin_channels(self) -> tuple[int, int, int, int]:
        """Channels of res2..res5."""
        return tuple(self.swin_embed_dim * 2 ** i for i in range(4))  # type: ignore[return-value]

    @property
    def padded_size(self) -> int:
        """The side the mask logits are upsampled to before cropping (official ``ImageList`` divisibility 32)."""
        return -(-self.image_size // 32) * 32

    def phi_config(self):
        """The transformers ``PhiConfig`` of the language model."""
        from transformers import PhiConfig

        cfg = PhiConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                        intermediate_size=self.intermediate_size, num_hidden_layers=self.num_hidden_layers,
                        num_attention_heads=self.num_attention_heads, layer_norm_eps=self.layer_norm_eps,
                        max_position_embeddings=self.max_position_embeddings, hidden_act="gelu_new",
                        rope_parameters=dict(rope_type="default", rope_theta=self.rope_theta,
                                             partial_rotary_factor=self.partial_rotary_factor),
                        use_cache=False)
        cfg._attn_implementation = "sdpa"
        return cfg

    def replace(self, **changes: Any) -> "PSALMConfig":
        return replace(self, **changes)


def _get(cfg: Mapping, path: str, default: Any) -> Any:
    node: Any = cfg
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


#: official options the mask decoder accepts but this implementation does not (value the release uses)
_UNSUPPORTED = {"MODEL.MASK_FORMER.FUSE_SCORE": False, "MODEL.SEM_SEG_HEAD.COMMON_STRIDE": 4}


def config_from_official(llava_config: Mapping[str, Any], mask_cfg: Optional[Mapping[str, Any]] = None, *,
                         swin: Optional[Mapping[str, Any]] = None,
                         projector_width: Optional[int] = None) -> PSALMConfig:
    """A :class:`PSALMConfig` from the official configuration.

    Args:
        llava_config: the checkpoint's ``config.json`` (``model_type`` ``llava_phi``).
        mask_cfg: the merged detectron2 mask-decoder config as a nested dict (``MODEL.MASK_FORMER...``,
            ``INPUT.IMAGE_SIZE``); ``None``: the release's yaml (the defaults of :class:`PSALMConfig`).
        swin: Swin sizes (``embed_dim``, ``depths``, ``num_heads``, ``window_size``) where the official code
            was patched to build a non-release Swin (parity fixtures); ``None``: from ``swin_type``.
        projector_width: the conv projector's width where it was patched likewise; ``None``: 2048.
    """
    base = PSALMConfig()
    mc = mask_cfg or {}
    for path, expected in _UNSUPPORTED.items():
        got = _get(mc, path, expected)
        if got != expected:
            raise ValueError(f"mask decoder option {path}={got!r} is not supported (the release uses {expected!r})")
    if not llava_config.get("mask_decode_train", True):
        raise ValueError("config.json has mask_decode_train=False: not a PSALM checkpoint with a mask decoder")
    if llava_config.get("mm_projector_type", "swin_conv") != "swin_conv":
        raise ValueError(f"mm_projector_type {llava_config.get('mm_projector_type')!r} is not supported "
                         "(the release uses 'swin_conv')")
    swin_type = llava_config.get("swin_type", "base")
    if swin is not None:
        sizes = dict(swin_embed_dim=int(swin["embed_dim"]), swin_depths=tuple(swin["depths"]),
                     swin_num_heads=tuple(swin["num_heads"]), swin_window_size=int(swin["window_size"]))
    elif swin_type in SWIN_TYPES:
        sizes = dict(SWIN_TYPES[swin_type])
    else:
        raise ValueError(f"unknown swin_type {swin_type!r} (choose from {sorted(SWIN_TYPES)})")
    res5 = sizes["swin_embed_dim"] * 8
    declared = int(llava_config.get("mm_input_embeds", 1536 if swin_type == "large" else 1024))
    if declared != res5:
        raise ValueError(f"config.json mm_input_embeds={declared} does not match the Swin's res5 channels {res5}")
    rope = llava_config.get("rope_parameters") or {}
    hidden = int(llava_config["hidden_size"])
    if int(llava_config.get("projector_outdim", hidden)) != hidden:
        raise ValueError("config.json projector_outdim must equal hidden_size (image tokens enter the LLM)")
    dec_layers = int(_get(mc, "MODEL.MASK_FORMER.DEC_LAYERS", base.decoder_layers + 1))
    return PSALMConfig(
        image_size=int(_get(mc, "INPUT.IMAGE_SIZE", base.image_size)), **sizes,
        projector_width=int(projector_width or base.projector_width),
        vocab_size=int(llava_config["vocab_size"]), hidden_size=hidden,
        intermediate_size=int(llava_config["intermediate_size"]),
        num_hidden_layers=int(llava_config["num_hidden_layers"]),
        num_attention_heads=int(llava_config["num_attention_heads"]),
        partial_rotary_factor=float(llava_config.get("partial_rotary_factor",
                                                     rope.get("partial_rotary_factor", 0.5))),
        rope_theta=float(llava_config.get("rope_theta", rope.get("rope_theta", 10000.0))),
        layer_norm_eps=float(llava_config.get("layer_norm_eps", 1e-5)),
        max_position_embeddings=int(llava_config.get("max_position_embeddings", 2048)),
        hidden_dim=int(_get(mc, "MODEL.MASK_FORMER.HIDDEN_DIM", base.hidden_dim)),
        conv_dim=int(_get(mc, "MODEL.SEM_SEG_HEAD.CONVS_DIM", base.conv_dim)),
        mask_dim=int(_get(mc, "MODEL.SEM_SEG_HEAD.MASK_DIM", base.mask_dim)),
        num_queries=int(_get(mc, "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", base.num_queries)),
        num_heads=int(_get(mc, "MODEL.MASK_FORMER.NHEADS", base.num_heads)),
        dim_feedforward=int(_get(mc, "MODEL.MASK_FORMER.DIM_FEEDFORWARD", base.dim_feedforward)),
        decoder_layers=dec_layers - 1,
        encoder_layers=int(_get(mc, "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", base.encoder_layers)),
        pre_norm=bool(_get(mc, "MODEL.MASK_FORMER.PRE_NORM", base.pre_norm)),
        seg_proj=bool(_get(mc, "MODEL.MASK_FORMER.SEG_PROJ", base.seg_proj)),
        seg_norm=bool(_get(mc, "MODEL.MASK_FORMER.SEG_NORM", base.seg_norm)),
    )  # pixel mean/std: hard-coded in the official dataset mappers, whatever the yaml says
