"""The registered RAM++ tagging stage: images -> :class:`openvocab.structures.Tags`."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch

from openvocab.checkpoint import CheckpointError
from openvocab.hub import RemoteFile
from openvocab.registry import TAGGERS

from ..recognize_anything.tag_lists import (DEFAULT_THRESHOLD, TINY_TAGS, TINY_THRESHOLD,  # noqa: F401
                                            TagList, official_tag_list)
from ..recognize_anything.tagger import RecognizeAnythingTagger
from .convert import convert_state_dict
from .model import build_ram_plus_swin_l, build_ram_plus_tiny
from .weights import CHECKPOINTS, TAG_FILES

VARIANTS = {"swin_l_384": build_ram_plus_swin_l, "tiny": build_ram_plus_tiny}


@TAGGERS.register_module()
class RAMPlusTagger(RecognizeAnythingTagger):
    """RAM++ tagger (closed-set 4585 tags, plus optional open-set tags from description embeddings).

    Args:
        variant: ``"swin_l_384"`` (official size) or ``"tiny"`` (tests, random pipeline).
        checkpoint: a name in :data:`tagging.ram_plus.weights.CHECKPOINTS`, a local path (official
            layout, converted with :func:`convert_state_dict`), or ``None`` = random init (``seed``).
        model_kwargs: overrides for the variant's build function (e.g. tiny sizes).
        tag_list: ``None`` = the official 4585 tags (for ``tiny`` without checkpoint: :data:`TINY_TAGS`);
            else the closed-set names in the checkpoint's class order (list or text file).
        tag_list_zh: Chinese names for a custom ``tag_list`` (list or file).
        class_thresholds: per-class thresholds (list or file) replacing the defaults.
        threshold: threshold of every custom tag when ``class_thresholds`` is not given.
        openset: path (or hub name) of an ``openvocab-openset-v1`` ``.safetensors`` file (D descriptions per
            tag, reweighted per image as the official RAM++ does).
        openset_mode: ``"add"`` (beside the closed set) or ``"replace"`` (open-set tags only).
        openset_threshold: threshold of open-set tags (official: 0.5).
        openset_thresholds: ``{tag: threshold}`` overriding it per open-set tag.
        delete_tag_index: closed-set class indices never output (official ``delete_tag_index``).
        tag_language: ``"en"`` or ``"zh"``: the language of ``Tag.name`` (see the base class).
        batch_size: images per forward pass.
        seed: seed of the random init (``checkpoint=None``).
    """

    MODEL_NAME = "RAM++"
    VARIANTS = VARIANTS
    CHECKPOINTS = CHECKPOINTS

    def __init__(self, *, variant: str = "swin_l_384", checkpoint: Optional[str] = "ram_plus_swin_large_14m",
                 model_kwargs: Optional[Mapping] = None, tag_list: Sequence[str] | str | None = None,
                 tag_list_zh: Sequence[str] | str | None = None,
                 class_thresholds: Sequence[float] | str | None = None, threshold: float = DEFAULT_THRESHOLD,
                 openset: Optional[str] = None, openset_mode: str = "add", openset_threshold: float = 0.5,
                 openset_thresholds: Optional[Mapping[str, float]] = None,
                 delete_tag_index: Sequence[int] = (), tag_language: str = "en", batch_size: int = 8,
                 seed: int = 0) -> None:
        super().__init__(variant=variant, checkpoint=checkpoint, model_kwargs=model_kwargs, tag_list=tag_list,
                         tag_list_zh=tag_list_zh, class_thresholds=class_thresholds, threshold=threshold,
                         openset=openset, openset_mode=openset_mode, openset_threshold=openset_threshold,
                         openset_thresholds=openset_thresholds, delete_tag_index=delete_tag_index,
                         tag_language=tag_language, batch_size=batch_size, seed=seed)

    convert_state_dict = staticmethod(convert_state_dict)

    def official_tag_list(self) -> TagList:
        return official_tag_list()

    def official_tag_files(self) -> list[RemoteFile]:
        return list(TAG_FILES.values())

    def check_checkpoint(self, sd, model, closed: TagList, source: str) -> None:
        rows = sd.get("label_embed")
        want = model.label_embed.shape[0]
        if rows is not None and rows.ndim == 2 and rows.shape[0] != want:
            raise CheckpointError(
                f"{source} has {rows.shape[0]} description rows (label_embed), the tag list needs "
                f"{len(closed)} tags x {model.descriptions_per_tag} = {want}")

    def openset_logits(self, image_embeds: torch.Tensor) -> torch.Tensor:
        return self.model.tag_logits(image_embeds, self._open_embed, self._open_d)
