"""Which tags name boxable things (objects) and which do not (scenes, actions, attributes...).

:class:`WordNetBoxableFilter` classifies a tag by its part of speech and the lexicographer file
(WordNet's coarse semantic class, e.g. ``noun.artifact``, ``noun.time``) of its most frequent
sense. The prompt builder (:class:`grounding.prompt.TagPromptBuilder`) takes it as
``boxable_filter=dict(type='WordNetBoxableFilter')`` so that only boxable tags reach the
detector while every tag stays an image tag.

Rules, in order:

1. the user's override lists (``boxable`` / ``not_boxable`` / ``override_file``) win;
2. the tag's WordNet entry (spaces as ``_``, inflections allowed): its part of speech is the
   noun unless a verb/adjective/adverb reading is more than :data:`POS_MARGIN` times as frequent in
   WordNet's tagged corpus (``red``, ``running``); a noun's category is that of its first
   (most frequent) sense, except that an object sense at least :data:`OBJECT_SHARE` as frequent
   wins, and so does any object sense when WordNet has no sense counts for the word;
3. a multi-word tag without an entry is classified by its head noun (last word, or the word before
   ``of``: ``"bathroom sink"`` -> ``sink``; trailing numbers dropped), or by its first word when
   it ends in a particle (``"stop at"`` -> stop, a verb);
4. a tag still unknown to WordNet gets category ``unknown`` and ``unknown_boxable``.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

from openvocab.registry import BOXABLE_FILTERS
from openvocab.stages import BoxableFilter

from . import lexicon
from .resources import load_wordnet

#: noun lexicographer files -> category
NOUN_CATEGORIES = {
    "noun.animal": "object", "noun.artifact": "object", "noun.body": "object",
    "noun.food": "object", "noun.object": "object", "noun.person": "object", "noun.plant": "object",
    "noun.location": "scene", "noun.time": "scene",
    "noun.act": "action", "noun.event": "action", "noun.process": "action",
    "noun.attribute": "attribute", "noun.shape": "attribute",
    "noun.substance": "substance", "noun.phenomenon": "substance",
    "noun.group": "group",
}
#: categories whose tags can be boxed
BOXABLE_CATEGORIES = frozenset({"object"})
#: categories of the other parts of speech
POS_CATEGORIES = {"v": "action", "a": "attribute", "s": "attribute", "r": "attribute"}
#: prepositions/particles that end phrasal verbs ("stop at", "type on")
PARTICLES = frozenset({"at", "to", "on", "in", "into", "off", "up", "down", "out", "over", "with", "for", "by"})
#: a non-noun reading wins only when it is this many times more frequent than the noun reading
POS_MARGIN = 2.0
#: an object sense is chosen over a more frequent first sense down to this share of its count
OBJECT_SHARE = 0.5


@dataclass(frozen=True)
class TagClass:
    """How one tag was classified.

    Attributes:
        tag: the tag as given.
        boxable: whether it may be sent to the detector.
        category: ``object``, ``scene``, ``action``, ``attribute``, ``substance``, ``group``,
            ``abstract`` (other noun files), ``unknown`` or ``override``.
        source: ``override``, ``wordnet`` (the tag's own entry), ``head_noun`` or ``unknown``.
        pos: WordNet POS letter used (``n``, ``v``, ``a``, ``r``) or ``""``.
        lexname: lexicographer file of the deciding sense (``noun.artifact``), or ``""``.
        synset: name of the deciding sense (``fireplug.n.01``), or ``""``.
        word: the word looked up (the head noun for ``source == "head_noun"``).
    """

    tag: str
    boxable: bool
    category: str
    source: str
    pos: str = ""
    lexname: str = ""
    synset: str = ""
    word: str = ""


def read_override_file(path: str | Path) -> tuple[list[str], list[str]]:
    """``(boxable, not_boxable)`` from a JSON ``{"boxable": [...], "not_boxable": [...]}`` file
    or a text file of ``+ tag`` (boxable) / ``- tag`` (not boxable) lines (``#`` comments)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read override file {path}: {e}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{path}: not JSON ({e})") from None
        if not isinstance(data, dict) or set(data) - {"boxable", "not_boxable"}:
            raise ValueError(f"{path}: expected {{'boxable': [...], 'not_boxable': [...]}}")
        return [str(t) for t in data.get("boxable", [])], [str(t) for t in data.get("not_boxable", [])]
    yes, no = [], []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line[0] not in "+-" or not line[1:].strip():
            raise ValueError(f"{path}:{i}: expected '+ tag' or '- tag', got {line!r}")
        (yes if line[0] == "+" else no).append(line[1:].strip())
    return yes, no


@BOXABLE_FILTERS.register_module()
class WordNetBoxableFilter(BoxableFilter):
    """Boxable = object-like by WordNet (see the module docstring), with user overrides.

    Args:
        boxable: tags always boxable (case-insensitive).
        not_boxable: tags never boxable; a tag in both lists is an error.
        override_file: more overrides (see :func:`read_override_file`).
        unknown_boxable: the answer for tags WordNet does not know at all.
    """

    def __init__(self, *, boxable: Sequence[str] = (), not_boxable: Sequence[str] = (),
                 override_file: Optional[str] = None, unknown_boxable: bool = True) -> None:
        if isinstance(boxable, str) or isinstance(not_boxable, str):
            raise ValueError("boxable / not_boxable must be lists of tags, not a string")
        yes, no = list(boxable), list(not_boxable)
        if override_file is not None:
            more_yes, more_no = read_override_file(override_file)
            yes += more_yes
            no += more_no
        self.boxable = {lexicon.clean_phrase(t) for t in yes}
        self.not_boxable = {lexicon.clean_phrase(t) for t in no}
        both = sorted(self.boxable & self.not_boxable)
        if both:
            raise ValueError(f"tags both boxable and not boxable in the overrides: {both}")
        self.unknown_boxable = bool(unknown_boxable)
        self._cache: dict[str, TagClass] = {}

    def is_boxable(self, tag: str) -> bool:
        return self.classify(tag).boxable

    def classify(self, tag: str) -> TagClass:
        """The :class:`TagClass` of ``tag`` (cached per tag)."""
        if not isinstance(tag, str) or not tag.strip():
            raise ValueError(f"tag must be a non-empty string, got {tag!r}")
        key = lexicon.clean_phrase(tag)
        if key in self.boxable or key in self.not_boxable:
            return TagClass(tag, key in self.boxable, "override", "override", word=key)
        if key not in self._cache:
            self._cache[key] = self._classify(tag, key)
        found = self._cache[key]
        return found if found.tag == tag else replace(found, tag=tag)

    def _classify(self, tag: str, key: str) -> TagClass:
        wn = load_wordnet()
        found = _wordnet_class(wn, key)
        if found is not None:
            return _make(tag, found, "wordnet", key)
        words = key.replace("-", " ").split()
        while len(words) > 1 and not words[-1].isalpha():  # "formula 1" -> formula
            words.pop()
        if len(words) > 1 and words[-1] in PARTICLES:  # "stop at", "lead to": the verb decides
            found = _wordnet_class(wn, words[0])
            if found is not None:
                return _make(tag, found, "head_noun", words[0])
        elif len(words) > 1 or words != key.split():
            head = lexicon.head_noun(" ".join(words))
            found = _wordnet_class(wn, head, nouns_only=True)
            if found is not None:
                return _make(tag, found, "head_noun", head)
        return TagClass(tag, self.unknown_boxable, "unknown", "unknown", word=key)

    def split_report(self, tags: Sequence[str]) -> dict:
        """How ``tags`` split: counts boxable / not, per category, per source and per lexname,
        plus the tags with no WordNet entry of their own (classified by head noun, or unknown)."""
        classes = [self.classify(t) for t in tags]
        return {
            "total": len(classes),
            "boxable": sum(c.boxable for c in classes),
            "not_boxable": sum(not c.boxable for c in classes),
            "categories": dict(Counter(c.category for c in classes).most_common()),
            "boxable_by_category": dict(Counter(c.category for c in classes if c.boxable).most_common()),
            "sources": dict(Counter(c.source for c in classes).most_common()),
            "lexnames": dict(Counter(c.lexname or "-" for c in classes).most_common()),
            "head_noun": {c.tag: c.word for c in classes if c.source == "head_noun"},
            "unknown": [c.tag for c in classes if c.source == "unknown"],
        }


def _make(tag: str, found: tuple[str, str, str, str], source: str, word: str) -> TagClass:
    category, pos, lexname, synset = found
    return TagClass(tag, category in BOXABLE_CATEGORIES, category, source, pos, lexname, synset, word)


def _wordnet_class(wn, phrase: str, *, nouns_only: bool = False) -> Optional[tuple[str, str, str, str]]:
    """``(category, pos, lexname, synset)`` of ``phrase``'s deciding sense, or None if unknown."""
    nouns = lexicon.synsets(wn, phrase, "n")
    if not nouns_only:
        noun_count = lexicon.lemma_count(wn, phrase, "n") if nouns else 0
        best, best_count = None, 0
        for pos in ("v", "a", "r"):
            if not lexicon.synsets(wn, phrase, pos):
                continue
            if nouns and pos == "v" and not lexicon.is_base_form(wn, phrase, "v"):
                continue  # "building", "clogs": an inflected verb that is also a noun reads as the noun
            count = lexicon.lemma_count(wn, phrase, pos)
            if best is None or count > best_count:
                best, best_count = pos, count
        if best is not None and (not nouns or best_count > POS_MARGIN * max(noun_count, 1)):
            sense = lexicon.synsets(wn, phrase, best)[0]
            return POS_CATEGORIES[sense.pos()], best, sense.lexname(), sense.name()
    if not nouns:
        return None
    sense = _deciding_noun_sense(wn, phrase, nouns)
    return _noun_category(sense), "n", sense.lexname(), sense.name()


def _noun_category(sense) -> str:
    if sense.lexname() == "noun.Tops":  # person, animal, food, event...: by hypernyms
        closure = {sense.name()} | {s.name() for s in sense.closure(lambda s: s.hypernyms())}
        if closure & {"whole.n.02", "living_thing.n.01"}:
            return "object"
        return "substance" if "matter.n.03" in closure else "abstract"
    return NOUN_CATEGORIES.get(sense.lexname(), "abstract")


def _deciding_noun_sense(wn, phrase: str, nouns: list):
    """The most frequent sense; an object sense wins when it is at least :data:`OBJECT_SHARE` as
    frequent (``glass``: the vessel vs the material), or when WordNet has no counts at all (the
    sense order is then arbitrary: ``alpaca`` the animal, not the wool)."""
    counts = [lexicon.sense_count(wn, phrase, s) for s in nouns]
    first = nouns[0]
    for sense, count in zip(nouns, counts):
        if _noun_category(sense) in BOXABLE_CATEGORIES and count >= OBJECT_SHARE * counts[0]:
            return sense
    return first
