"""Official PSALM checkpoint keys -> :class:`.model.PSALMModel` keys, and reading the checkpoint's files.

The release is a transformers folder saved by ``PSALM.save_pretrained`` under transformers 4.36: sharded
safetensors (``model.safetensors.index.json``) whose Phi layers use the fused ``self_attn.query_key_value``
(per head interleaved q, k, v). transformers 5's ``PhiModel`` has ``q_proj``/``k_proj``/``v_proj``, so the fused
matrix is split per head: ``W.view(heads, 3, head_dim, Hd)[:, i]``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Mapping

import torch

from openvocab.checkpoint import CheckpointError, read_state_dict

#: official keys that inference never reads (the LM head: PSALM generates no text; Mask2Former's learnable query
#: features, replaced by the LLM's query states)
UNUSED_KEYS = frozenset({"lm_head.weight", "predictor.query_feat.weight", "predictor.SEG_query_embed.weight"})

_RENAMES = (("model.vision_tower.", "vision_tower."), ("model.mm_projector.", "mm_projector."),
            ("model.", "language_model."))
_QKV = re.compile(r"^model\.layers\.(\d+)\.self_attn\.query_key_value\.(weight|bias)$")


def split_qkv(fused: torch.Tensor, num_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """transformers 4.36 Phi's fused ``query_key_value`` weight ``[3Hd, Hd]`` (or bias ``[3Hd]``) -> q, k, v."""
    three_hd = fused.shape[0]
    if three_hd % (3 * num_heads):
        raise CheckpointError(f"query_key_value has {three_hd} rows: not 3 x hidden for {num_heads} heads")
    head_dim = three_hd // (3 * num_heads)
    per_head = fused.reshape(num_heads, 3, head_dim, *fused.shape[1:])
    return tuple(per_head[:, i].reshape(num_heads * head_dim, *fused.shape[1:]).contiguous() for i in range(3))


def convert_state_dict(sd: Mapping[str, torch.Tensor], *, num_attention_heads: int) -> dict[str, torch.Tensor]:
    """Official ``PSALM.state_dict()`` names (fused or split Phi attention) -> this implementation's names.

    ``num_attention_heads``: Phi's head count (config.json), needed to split the fused attention. Keys of
    :data:`UNUSED_KEYS` and Phi's rotary buffers are dropped; every other key is kept, so strict loading still
    reports what does not fit.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key in UNUSED_KEYS or key.endswith("rotary_emb.inv_freq"):
            continue
        m = _QKV.match(key)
        if m:
            layer, kind = m.groups()
            for name, part in zip(("q_proj", "k_proj", "v_proj"), split_qkv(value, num_attention_heads)):
                out[f"language_model.layers.{layer}.self_attn.{name}.{kind}"] = part
            continue
        for old, new in _RENAMES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


#: weight files of a transformers folder, in the order they are looked for
_FOLDER_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json",
                 "pytorch_model.bin")


def read_checkpoint(path: os.PathLike | str) -> dict[str, torch.Tensor]:
    """Every tensor of a PSALM checkpoint: a transformers folder (sharded or single safetensors / ``.bin``,
    read with ``weights_only``) or one ``.safetensors`` / ``.pt`` / ``.pth`` state_dict file."""
    path = Path(path)
    if path.is_file():
        return read_state_dict(path, key="state_dict")
    for name in _FOLDER_FILES:
        f = path / name
        if not f.is_file():
            continue
        if not name.endswith(".index.json"):
            return read_state_dict(f)
        try:
            weight_map = json.loads(f.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{f}: not a shard index ({type(e).__name__}: {e})") from None
        sd: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            if not (path / shard).is_file():
                raise CheckpointError(f"{f} names shard {shard!r}, which is missing from {path}")
            part = read_state_dict(path / shard)
            sd.update(part)
        missing = sorted(set(weight_map) - set(sd))
        if missing:
            raise CheckpointError(f"{f}: {len(missing)} keys of the index are in no shard, e.g. {missing[:3]}")
        return sd
    raise CheckpointError(f"{path}: no PSALM weights ({', '.join(_FOLDER_FILES)}) in this folder")
