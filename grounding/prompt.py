"""Tags -> text prompts for text-prompted detectors (Grounding DINO, native and transformers): the caption and the
character span of every tag.

Grounding-DINO-style captions join tags with ``" . "`` and end with ``" ."``
(``"cat . fire hydrant ."``); the detector's sub-sentence mask keeps each tag's tokens
attending only among themselves. A vocabulary longer than the detector's token limit is split
into several prompts (chunks) that the detector runs separately and merges.

Prompts are a detector's own business: the pipeline hands it tag names (openvocab's core speaks in tags
only), and a text-prompted detector turns them into prompts with a :class:`PromptChunker` (the native
Grounding DINO and the transformers backends share it; a plugin detector may too). The chunker caches per
vocabulary, so a ``--vocab`` job builds and tokenizes its prompts once, not once per image.
"""
from __future__ import annotations

import abc
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

from openvocab.registry import PROMPT_BUILDERS


@dataclass(frozen=True)
class TagSpan:
    """A tag's place in a detector prompt: ``caption[start:end] == name`` (character offsets).

    ``tag`` is the tag as the caller spelled it (``"St. Bernard"`` for the caption text
    ``"st bernard"``); ``None`` means the same as ``name``. Boxes are labelled with :attr:`label`.
    """

    name: str
    start: int
    end: int
    tag: Optional[str] = None

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"Bad span [{self.start}, {self.end}) for tag {self.name!r}")

    @property
    def label(self) -> str:
        """The tag name a box found through this span is labelled with."""
        return self.name if self.tag is None else self.tag


@dataclass(frozen=True)
class Prompt:
    """A detector text prompt (one chunk of a vocabulary), e.g. ``"cat . fire hydrant ."``.

    Attributes:
        caption: the text fed to the detector's text encoder.
        spans: the character span of every tag inside ``caption``, in caption order.
    """

    caption: str
    spans: tuple[TagSpan, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "spans", tuple(self.spans))
        for s in self.spans:
            if s.end > len(self.caption) or self.caption[s.start:s.end] != s.name:
                raise ValueError(f"Span {s} does not match caption {self.caption!r}")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.spans]

    @property
    def labels(self) -> list[str]:
        """The caller's tag names, in caption order (see :attr:`TagSpan.label`)."""
        return [s.label for s in self.spans]


class PromptBuilder(abc.ABC):
    """Tag names -> text prompts (chunks under a text encoder's token limit) with per-tag spans; used by
    text-prompted detectors (their own business, through :class:`PromptChunker`)."""

    @abc.abstractmethod
    def build(self, names: Sequence[str], count_tokens: Callable[[str], int],
              max_tokens: int) -> list[Prompt]:
        ...


def normalise_tag(name: str) -> str:
    """The form a tag takes inside a caption: lower case, no dots, single spaces."""
    return re.sub(r"\s+", " ", name.replace(".", " ")).strip().lower()


@PROMPT_BUILDERS.register_module()
class TagPromptBuilder(PromptBuilder):
    """Builds ``"a . b . c ."`` captions with per-tag spans, chunked under the token limit.

    Args:
        separator: text between tags (the official Grounding DINO convention is ``" . "``).
        max_tags_per_prompt: optional cap on tags per chunk (besides the token limit).
    """

    def __init__(self, *, separator: str = " . ", max_tags_per_prompt: Optional[int] = None) -> None:
        if "." not in separator:
            raise ValueError(f"separator must contain '.', got {separator!r}")
        self.separator = separator
        if max_tags_per_prompt is not None and max_tags_per_prompt < 1:
            raise ValueError("max_tags_per_prompt must be >= 1")
        self.max_tags_per_prompt = max_tags_per_prompt

    def _caption(self, names: Sequence[tuple[str, str]]) -> tuple[str, tuple[TagSpan, ...]]:
        spans, pos = [], 0
        for i, (key, tag) in enumerate(names):
            if i:
                pos += len(self.separator)
            spans.append(TagSpan(name=key, start=pos, end=pos + len(key), tag=None if tag == key else tag))
            pos += len(key)
        return self.separator.join(k for k, _ in names) + self.separator.rstrip(), tuple(spans)

    def build(self, names: Sequence[str], count_tokens: Callable[[str], int],
              max_tokens: int) -> list[Prompt]:
        """Prompts for ``names`` (caption text normalised with :func:`normalise_tag`; names that
        normalise alike keep the first; each span's :attr:`~TagSpan.label` is the name as given).

        Raises ValueError if a single tag alone exceeds ``max_tokens``.
        """
        unique: list[tuple[str, str]] = []
        seen = set()
        for n in names:
            key = normalise_tag(n)
            if key and key not in seen:
                seen.add(key)
                unique.append((key, n))
        prompts: list[Prompt] = []
        chunk: list[tuple[str, str]] = []
        for item in unique:
            candidate = chunk + [item]
            too_many = self.max_tags_per_prompt is not None and len(candidate) > self.max_tags_per_prompt
            if chunk and (too_many or count_tokens(self._caption(candidate)[0]) > max_tokens):
                prompts.append(Prompt(*self._caption(chunk)))
                chunk, candidate = [], [item]
            if count_tokens(self._caption(candidate)[0]) > max_tokens:
                raise ValueError(f"Tag {item[1]!r} alone is longer than the detector's {max_tokens}-token limit")
            chunk = candidate
        if chunk:
            prompts.append(Prompt(*self._caption(chunk)))
        return prompts


class PromptChunker:
    """A detector's tag names -> prompt chunks, built once per distinct vocabulary (LRU cache).

    Args:
        count_tokens: the detector's token counter (special tokens included).
        max_tokens: its text limit.
        builder: a :class:`PromptBuilder`, its config dict, or ``None`` (:class:`TagPromptBuilder`).
        cache_size: vocabularies remembered (a ``--vocab`` job has one; a tagger gives one per tag set).
    """

    def __init__(self, *, count_tokens: Callable[[str], int], max_tokens: int,
                 builder: Union[PromptBuilder, dict, None] = None, cache_size: int = 256) -> None:
        if isinstance(builder, dict):
            builder = PROMPT_BUILDERS.build(builder)
        self.builder: PromptBuilder = builder if builder is not None else TagPromptBuilder()
        if max_tokens < 1 or cache_size < 1:
            raise ValueError("max_tokens and cache_size must be >= 1")
        self.count_tokens, self.max_tokens, self.cache_size = count_tokens, max_tokens, cache_size
        self._cache: OrderedDict[tuple[str, ...], tuple[Prompt, ...]] = OrderedDict()
        self.builds = 0  #: how many vocabularies were built (not served from the cache)

    def __call__(self, names: Sequence[str]) -> tuple[Prompt, ...]:
        key = tuple(names)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        prompts = tuple(self.builder.build(list(key), self.count_tokens, self.max_tokens)) if key else ()
        self.builds += 1
        self._cache[key] = prompts
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return prompts
