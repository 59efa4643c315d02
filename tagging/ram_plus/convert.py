"""Official RAM++ checkpoint -> :class:`tagging.ram_plus.model.RAMPlus` state_dict (pure function)."""
from __future__ import annotations

from typing import Mapping

import torch

#: deterministic buffers the official loader deletes; RAMPlus rebuilds them (non-persistent)
_DROPPED_SUFFIXES = ("relative_position_index", "attn_mask")


def convert_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official key layout -> this package's (which keeps the official names).

    * unwraps ``{'model': sd}``;
    * drops ``*relative_position_index`` and ``*attn_mask`` buffers (rebuilt by the model);
    * renames ``vision_multi`` -> ``tagging_head`` (older official checkpoints);
    * drops the BERT parts the official model deletes (``tagging_head.embeddings.*``,
      ``*.attention.*`` self-attention, ``tagging_head.pooler.*``) if a file carries them.

    Other keys pass through unchanged, so a wrong checkpoint fails in ``load_strict``.
    """
    if "model" in sd and isinstance(sd["model"], Mapping):
        sd = sd["model"]
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith(_DROPPED_SUFFIXES):
            continue
        key = key.replace("vision_multi", "tagging_head")
        if key.startswith("tagging_head.") and (
                key.startswith(("tagging_head.embeddings.", "tagging_head.pooler."))
                or ".attention." in key):
            continue
        out[key] = value
    return out
