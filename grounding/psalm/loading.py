"""Loading PSALM: the official checkpoint (a hub id or a local folder/file) or the tiny random model.

Every path into the model goes through :func:`load_official_weights` (official names ->
:func:`.convert.convert_state_dict` -> :func:`openvocab.checkpoint.load_strict`): the release, a local copy,
and the parity fixtures' state_dicts alike.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from openvocab.checkpoint import CheckpointError, load_strict

from .config import PSALMConfig, config_from_official
from .convert import convert_state_dict, read_checkpoint
from .model import BUILDERS, PSALMModel
from .tokenizer import byte_tokenizer, load_tokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_official_weights(model: PSALMModel, state_dict: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Official ``PSALM.state_dict()`` keys into ``model``, strictly (one message naming what does not fit)."""
    converted = convert_state_dict(state_dict, num_attention_heads=model.config.num_attention_heads)
    load_strict(model, converted, source=source)


def empty_model(config: PSALMConfig, device: str | torch.device = "cpu") -> PSALMModel:
    """The model with uninitialised parameters on ``device`` (built on the meta device: no random init of 1.5 B
    weights about to be overwritten); Phi's rotary tables, which no checkpoint holds, are computed."""
    with torch.device("meta"):
        model = PSALMModel(config=config)
    model = model.to_empty(device=device)
    rotary = model.language_model.rotary_emb
    with torch.device(device):
        model.language_model.rotary_emb = type(rotary)(config=model.language_model.config)
    return model


def read_config(folder: Path) -> dict[str, Any]:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder / 'config.json'}: cannot read ({type(e).__name__}: {e})") from None
    if cfg.get("model_type") != "llava_phi":
        raise CheckpointError(f"{folder / 'config.json'}: model_type {cfg.get('model_type')!r} is not PSALM's "
                              "'llava_phi'")
    return cfg


def load_checkpoint(path: os.PathLike | str, *, device: str = "cpu", dtype: str = "float32",
                    mask_cfg: Optional[Mapping[str, Any]] = None,
                    config: Optional[PSALMConfig] = None) -> tuple[PSALMModel, Any]:
    """A PSALM folder (``config.json``, tokenizer, weights) -> ``(model in eval mode on device, tokenizer)``.

    ``mask_cfg``: the mask decoder's detectron2 config as a nested dict (default: the release's
    ``maskformer2_swin_base_384_bs16_50ep.yaml``, which every official eval script uses). ``config``: sizes to
    use instead of those read from ``config.json`` + ``mask_cfg`` (a checkpoint of a patched official model).
    """
    folder = Path(path)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)} (got {dtype!r})")
    llava_config = read_config(folder)
    config = config or config_from_official(llava_config, mask_cfg)
    model = empty_model(config)
    load_official_weights(model, read_checkpoint(folder), source=str(folder))
    tokenizer = load_tokenizer(folder)
    if len(tokenizer) > config.vocab_size:
        raise CheckpointError(f"{folder}: the tokenizer has {len(tokenizer)} ids but the model embeds "
                              f"{config.vocab_size}")
    return model.to(device=device, dtype=DTYPES[dtype]).eval(), tokenizer


def random_model(variant: str = "tiny", *, seed: int = 0, device: str = "cpu", dtype: str = "float32",
                 **sizes: Any) -> tuple[PSALMModel, Any]:
    """A randomly initialised model (``variant`` of :data:`.model.BUILDERS`, ``seed``) and the byte tokenizer:
    runs offline; outputs are meaningless."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)} (got {dtype!r})")
    if variant not in BUILDERS:
        raise ValueError(f"variant must be one of {sorted(BUILDERS)} (got {variant!r})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BUILDERS[variant](**sizes)
        with torch.no_grad():  # the official init leaves the query rows all zero: distinct random queries instead
            model.seg_query.normal_()
            model.predictor.query_embed.weight.mul_(0.5)
    return model.to(device=device, dtype=DTYPES[dtype]).eval(), byte_tokenizer()
