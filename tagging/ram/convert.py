"""Official RAM checkpoint -> :class:`tagging.ram.model.RAM` state_dict (pure function)."""
from __future__ import annotations

from typing import Mapping

import torch

from ..recognize_anything.loading import is_deleted_head_part, official_entries

#: the captioning branch the official RAM carries (Tag2Text's) but never uses for tagging
CAPTION_BRANCH = ("tag_encoder.", "text_decoder.")


def convert_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official key layout -> :class:`RAM`'s (which keeps the official names).

    * unwraps ``{'model': sd}``; drops ``*relative_position_index`` / ``*attn_mask`` (rebuilt by the model);
    * renames ``vision_multi`` -> ``tagging_head`` (older official checkpoints);
    * drops the captioning branch ``tag_encoder.*`` / ``text_decoder.*`` (about 270 M of the file's 469 M
      parameters; ``generate_tag`` never runs it; its ``tag_encoder`` layers 0-1 are the same tensors as
      ``tagging_head``, which stays);
    * drops the tagging-head BERT parts the official model deletes, if a file carries them.

    Everything else passes unchanged, so a wrong checkpoint fails in the strict load. Relative position
    tables of another window are resized when loading (:func:`tagging.recognize_anything.loading.load_official`).
    """
    return {k: v for k, v in official_entries(sd).items()
            if not k.startswith(CAPTION_BRANCH) and not is_deleted_head_part(k)}
