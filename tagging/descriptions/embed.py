"""Tag descriptions -> the open-set embedding file the RAM++ tagger loads (``openset=...``).

File layout (safetensors): tensor ``label_embed`` ``float32 [K*D, 512]``, class-major (tag ``k`` owns
rows ``k*D ... k*D+D-1``), each row an L2-normalised CLIP text embedding of one description; metadata
``{"format": "openvocab-openset-v1", "tags": json list of K tags, "descriptions_per_tag": str(D)}``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Union

import torch

from openvocab.registry import TEXT_ENCODERS, TOOLS
from openvocab.stages import DescriptionEmbedder

from .files import OPENSET_FORMAT


@TOOLS.register_module()
class CLIPDescriptionEmbedder(DescriptionEmbedder):
    """Embeds every description of every tag with a text encoder (default CLIP ViT-B/16).

    Args:
        encoder: a text encoder (``encode(texts) -> [N, 512]`` normalised) or its config.
        descriptions_per_tag: D; every tag must have exactly D descriptions (``None``: take the
            first tag's count). Tags with more are cut to D; with fewer, a ValueError names them.
    """

    def __init__(self, *, encoder: Union[dict, object, None] = None,
                 descriptions_per_tag: Optional[int] = None) -> None:
        encoder = encoder if encoder is not None else dict(type="CLIPTextEncoder")
        self.encoder = TEXT_ENCODERS.build(encoder) if isinstance(encoder, dict) else encoder
        self.descriptions_per_tag = descriptions_per_tag

    def embed(self, descriptions: dict[str, list[str]]) -> tuple[list[str], torch.Tensor, int]:
        if not descriptions:
            raise ValueError("no tag descriptions to embed")
        tags = list(descriptions)
        d = self.descriptions_per_tag or len(descriptions[tags[0]])
        short = [t for t in tags if len(descriptions[t]) < d]
        if short:
            raise ValueError(f"{len(short)} tags have fewer than {d} descriptions: {short[:5]}")
        texts = [s for t in tags for s in descriptions[t][:d]]
        emb = self.encoder.encode(texts).float()
        return tags, emb, d

    def embed_to_file(self, descriptions: dict[str, list[str]], out_path: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        tags, emb, d = self.embed(descriptions)
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        save_file({"label_embed": emb.contiguous()}, str(tmp),
                  metadata={"format": OPENSET_FORMAT, "tags": json.dumps(tags, ensure_ascii=False),
                            "descriptions_per_tag": str(d)})
        os.replace(tmp, out)
