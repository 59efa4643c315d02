"""Official RAM++ checkpoint -> :class:`tagging.ram_plus.model.RAMPlus` state_dict (pure function)."""
from __future__ import annotations

from typing import Mapping

import torch

from ..recognize_anything.loading import is_deleted_head_part, official_entries


def convert_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official key layout -> this package's (which keeps the official names).

    * unwraps ``{'model': sd}``;
    * drops ``*relative_position_index`` and ``*attn_mask`` buffers (rebuilt by the model);
    * renames ``vision_multi`` -> ``tagging_head`` (older official checkpoints);
    * drops the BERT parts the official model deletes (``tagging_head.embeddings.*``,
      ``*.attention.*`` self-attention, ``tagging_head.pooler.*``) if a file carries them.

    Other keys pass through unchanged, so a wrong checkpoint fails in ``load_strict``. Relative position
    tables of another window size are resized when loading
    (:func:`tagging.recognize_anything.loading.load_official`).
    """
    return {k: v for k, v in official_entries(sd).items() if not is_deleted_head_part(k)}
