"""The boxable filter every pipeline can use without a language model: a list of names that are not boxable
(scenes, actions, attributes stay image tags). WordNet's filter is ``tagging.text.WordNetBoxableFilter``."""
from __future__ import annotations

from typing import Sequence

from .registry import BOXABLE_FILTERS
from .stages import BoxableFilter


@BOXABLE_FILTERS.register_module()
class ListBoxableFilter(BoxableFilter):
    """Everything is boxable except the names listed in ``not_boxable`` (case-insensitive)."""

    def __init__(self, *, not_boxable: Sequence[str] = (), boxable: Sequence[str] = ()) -> None:
        self.not_boxable = {n.strip().lower() for n in not_boxable}
        self.boxable = {n.strip().lower() for n in boxable}

    def is_boxable(self, tag: str) -> bool:
        key = tag.strip().lower()
        return key in self.boxable or key not in self.not_boxable
