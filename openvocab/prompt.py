"""Tags -> detector prompts: the caption and the character span of every tag.

Grounding-DINO-style captions join tags with ``" . "`` and end with ``" ."``
(``"cat . fire hydrant ."``); the detector's sub-sentence mask keeps each tag's tokens
attending only among themselves. A vocabulary longer than the detector's token limit is split
into several prompts (chunks) that the detector runs separately and merges.
"""
from __future__ import annotations

import re
from typing import Callable, Optional, Sequence, Union

from .registry import BOXABLE_FILTERS, PROMPT_BUILDERS
from .stages import BoxableFilter, PromptBuilder
from .structures import Prompt, TagSpan


@BOXABLE_FILTERS.register_module()
class ListBoxableFilter(BoxableFilter):
    """Everything is boxable except the names listed in ``not_boxable`` (case-insensitive)."""

    def __init__(self, *, not_boxable: Sequence[str] = (), boxable: Sequence[str] = ()) -> None:
        self.not_boxable = {n.strip().lower() for n in not_boxable}
        self.boxable = {n.strip().lower() for n in boxable}

    def is_boxable(self, tag: str) -> bool:
        key = tag.strip().lower()
        return key in self.boxable or key not in self.not_boxable


def normalise_tag(name: str) -> str:
    """The form a tag takes inside a caption: lower case, no dots, single spaces."""
    return re.sub(r"\s+", " ", name.replace(".", " ")).strip().lower()


@PROMPT_BUILDERS.register_module()
class TagPromptBuilder(PromptBuilder):
    """Builds ``"a . b . c ."`` captions with per-tag spans, chunked under the token limit.

    Args:
        boxable_filter: decides which tags may reach the detector (a :class:`BoxableFilter`, its
            config dict, or ``None`` = every tag is boxable).
        separator: text between tags (the official Grounding DINO convention is ``" . "``).
        max_tags_per_prompt: optional cap on tags per chunk (besides the token limit).
    """

    def __init__(self, *, boxable_filter: Union[BoxableFilter, dict, None] = None,
                 separator: str = " . ", max_tags_per_prompt: Optional[int] = None) -> None:
        if isinstance(boxable_filter, dict):
            boxable_filter = BOXABLE_FILTERS.build(boxable_filter)
        self.boxable_filter = boxable_filter
        if "." not in separator:
            raise ValueError(f"separator must contain '.', got {separator!r}")
        self.separator = separator
        if max_tags_per_prompt is not None and max_tags_per_prompt < 1:
            raise ValueError("max_tags_per_prompt must be >= 1")
        self.max_tags_per_prompt = max_tags_per_prompt

    def is_boxable(self, tag: str) -> bool:
        return self.boxable_filter is None or self.boxable_filter.is_boxable(tag)

    def _caption(self, names: Sequence[str]) -> tuple[str, tuple[TagSpan, ...]]:
        spans, pos = [], 0
        for i, name in enumerate(names):
            if i:
                pos += len(self.separator)
            spans.append(TagSpan(name=name, start=pos, end=pos + len(name)))
            pos += len(name)
        return self.separator.join(names) + self.separator.rstrip(), tuple(spans)

    def build(self, names: Sequence[str], count_tokens: Callable[[str], int],
              max_tokens: int) -> list[Prompt]:
        """Prompts for ``names`` (normalised with :func:`normalise_tag`, duplicates dropped).

        Raises ValueError if a single tag alone exceeds ``max_tokens``.
        """
        unique: list[str] = []
        seen = set()
        for n in names:
            key = normalise_tag(n)
            if key and key not in seen:
                seen.add(key)
                unique.append(key)
        prompts: list[Prompt] = []
        chunk: list[str] = []
        for name in unique:
            candidate = chunk + [name]
            too_many = self.max_tags_per_prompt is not None and len(candidate) > self.max_tags_per_prompt
            if chunk and (too_many or count_tokens(self._caption(candidate)[0]) > max_tokens):
                prompts.append(Prompt(*self._caption(chunk)))
                chunk, candidate = [], [name]
            if count_tokens(self._caption(candidate)[0]) > max_tokens:
                raise ValueError(f"Tag {name!r} alone is longer than the detector's {max_tokens}-token limit")
            chunk = candidate
        if chunk:
            prompts.append(Prompt(*self._caption(chunk)))
        return prompts
