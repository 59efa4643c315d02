"""Loader of open-set tag embedding files (``openvocab-openset-v1``), for RAM++ and RAM.

A ``.safetensors`` file with one tensor ``label_embed`` ``float32 [K*D, 512]`` (class-major:
tag k owns rows ``k*D .. k*D+D-1``; each row L2-normalised CLIP text features of one description)
and metadata ``tags`` (JSON list of K names), ``descriptions_per_tag`` (D) and ``format``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from openvocab.checkpoint import safetensors_error

FORMAT = "openvocab-openset-v1"
EMBED_DIM = 512


def load_openset_embeddings(path: os.PathLike | str) -> tuple[list[str], torch.Tensor, int]:
    """``(tags, label_embed [K*D, 512] float32, D)``; raises ``ValueError`` naming the file on bad content."""
    from safetensors import safe_open

    path = Path(path)

    def bad(msg: str) -> ValueError:
        return ValueError(f"{path}: not a valid open-set embedding file ({FORMAT}): {msg}")

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if "label_embed" not in f.keys():
                raise bad(f"no 'label_embed' tensor (has {sorted(f.keys())})")
            embed = f.get_tensor("label_embed")
    except ValueError:
        raise
    except Exception as e:
        raise safetensors_error(path, e) from None
    if meta.get("format") != FORMAT:
        raise bad(f"format is {meta.get('format')!r}")
    try:
        tags = json.loads(meta["tags"])
        d = int(meta["descriptions_per_tag"])
    except (KeyError, ValueError, TypeError) as e:
        raise bad(f"bad or missing metadata ({type(e).__name__}: {e})") from None
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t.strip() for t in tags):
        raise bad("'tags' must be a non-empty JSON list of non-empty strings")
    if len(set(tags)) != len(tags):
        raise bad("duplicate tag names")
    if d < 1:
        raise bad(f"descriptions_per_tag must be positive, got {d}")
    if embed.ndim != 2 or embed.shape[1] != EMBED_DIM or embed.shape[0] != len(tags) * d:
        raise bad(f"label_embed has shape {list(embed.shape)}, expected [{len(tags)} * {d}, {EMBED_DIM}]")
    if not embed.is_floating_point():
        raise bad(f"label_embed has dtype {embed.dtype}")
    embed = embed.float()
    if not torch.isfinite(embed).all():
        raise bad("label_embed has non-finite values")
    norms = embed.norm(dim=1)
    if (norms - 1).abs().max() > 1e-2:
        raise bad(f"rows are not L2-normalised (norms {norms.min().item():.4f} .. {norms.max().item():.4f})")
    return tags, embed, d
