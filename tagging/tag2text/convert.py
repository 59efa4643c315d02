"""Official Tag2Text checkpoint -> :class:`tagging.tag2text.model.Tag2Text` state_dict (pure function)."""
from __future__ import annotations

from typing import Mapping

import torch

from ..recognize_anything.loading import is_deleted_head_part, official_entries


def convert_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official key layout -> :class:`Tag2Text`'s (which keeps the official names).

    * unwraps ``{'model': sd}``; drops ``*relative_position_index`` / ``*attn_mask`` (rebuilt by the model);
    * renames ``vision_multi`` -> ``tagging_head`` (older official checkpoints);
    * drops the BERT ``*.embeddings.position_ids`` buffers (``arange(512)``; the model builds positions itself);
    * drops the tagging-head BERT parts the official model deletes, if a file carries them.

    The tied tensors stay under both names (``tagging_head.*`` and ``tag_encoder.encoder.layer.{0,1}.*``;
    ``text_decoder.cls.predictions.decoder.*``), as ``state_dict()`` lists them. Everything else passes
    unchanged, so a wrong checkpoint fails in the strict load; relative position tables of another window
    are resized when loading (:func:`tagging.recognize_anything.loading.load_official`).
    """
    return {k: v for k, v in official_entries(sd).items()
            if not k.endswith("embeddings.position_ids") and not is_deleted_head_part(k)}
