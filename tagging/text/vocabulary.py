"""User vocabularies: merge plurals and synonyms, and map user classes onto tags (an ontology).

``VocabularyNormaliser().normalise(["car", "cars", "automobile", "dog"])`` keeps ``car`` and
``dog`` and reports that ``cars`` (plural) and ``automobile`` (synonym, ``car.n.01``) were merged
into ``car``. ``ontology(["vehicle"], ["car", "truck", "bus", "dog"])`` gives
``{"vehicle": ["car", "truck", "bus"]}``: a tag triggers a class when its main WordNet sense is
the class's sense or one of its hyponyms (transitively), or when the head of its definition's genus
is a word of the class's sense (WordNet files ``bus`` under "conveyance", but defines it as "a
vehicle carrying many passengers").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from openvocab.registry import TOOLS

from . import lexicon
from .resources import load_wordnet

#: words that end the genus (head phrase) of a WordNet definition
GENUS_STOP = frozenset({
    "of", "that", "which", "who", "whose", "with", "without", "for", "in", "on", "at", "used",
    "having", "by", "to", "from", "and", "or", "as", "where", "when", "consisting", "especially",
    "usually", "typically", "made", "worn", "like", "resembling", "designed",
})
#: genus words too vague to link a tag to a class ("a member of the genus Canis")
GENUS_VAGUE = frozenset({
    "member", "kind", "type", "sort", "form", "part", "piece", "variety", "any", "one", "group",
    "genus", "species", "name", "thing", "something", "someone", "unit", "item", "small", "large",
})


@dataclass(frozen=True)
class Merge:
    """User names folded into one class.

    Attributes:
        kept: the class name (the singular of the group's first-listed name, lower case).
        merged: the group's other user names, as given, in input order (all but the name spelled
            like the class, or else the first).
        reasons: one per merged name: ``duplicate`` (same after lower-casing/spacing),
            ``plural`` (same singular; ``people`` is ``person``'s) or ``synonym`` (same WordNet sense).
        synset: the shared WordNet sense for synonyms (``car.n.01``), else ``""``.
    """

    kept: str
    merged: tuple[str, ...]
    reasons: tuple[str, ...]
    synset: str = ""


@dataclass(frozen=True)
class NormalisedVocabulary:
    """Result of :meth:`VocabularyNormaliser.normalise`.

    Attributes:
        classes: the class names kept, in first-appearance order.
        mapping: every input name -> its class name.
        merges: one :class:`Merge` per class that absorbed other names.
        synsets: class name -> its main WordNet sense name (``""`` when WordNet lacks it).
    """

    classes: tuple[str, ...]
    mapping: dict[str, str]
    merges: tuple[Merge, ...] = ()
    synsets: dict[str, str] = field(default_factory=dict)

    def report(self) -> str:
        """Human-readable lines, one per merge."""
        if not self.merges:
            return f"{len(self.classes)} classes, nothing merged"
        lines = [f"{len(self.mapping)} names -> {len(self.classes)} classes"]
        for m in self.merges:
            parts = ", ".join(f"{n!r} ({r})" for n, r in zip(m.merged, m.reasons))
            lines.append(f"{m.kept!r} <- {parts}" + (f" [{m.synset}]" if m.synset else ""))
        return "\n".join(lines)


@TOOLS.register_module()
class VocabularyNormaliser:
    """Merges plural forms and WordNet synonyms in a vocabulary; builds class -> tags ontologies.

    Args:
        merge_synonyms: also merge names whose main noun sense is the same (else plurals and
            duplicates only).
        use_glosses: in :meth:`ontology`, also link a tag to a class named by the genus of the
            tag's WordNet definition.
    """

    def __init__(self, *, merge_synonyms: bool = True, use_glosses: bool = True) -> None:
        self.merge_synonyms = bool(merge_synonyms)
        self.use_glosses = bool(use_glosses)

    # -- words ------------------------------------------------------------------------------
    def singular(self, name: str) -> str:
        """Lower case, single spaces, last word in its singular noun form (``fire hydrants`` ->
        ``fire hydrant``); words WordNet lists as nouns themselves (``glasses``) are kept."""
        text = lexicon.singular_noun(load_wordnet(), name)
        if not text:
            raise ValueError(f"empty class name {name!r}")
        return text

    def main_sense(self, name: str):
        """The most frequent noun sense of ``name`` (or of its head noun when WordNet lacks the
        phrase), by WordNet's sense counts; None when unknown."""
        wn = load_wordnet()
        phrase = self.singular(name)
        senses = lexicon.synsets(wn, phrase, "n")
        if not senses and " " in phrase:
            phrase = lexicon.head_noun(phrase)
            senses = lexicon.synsets(wn, phrase, "n")
        return lexicon.ranked_senses(wn, phrase, "n")[0] if senses else None

    # -- normalise --------------------------------------------------------------------------
    def normalise(self, names: Sequence[str]) -> NormalisedVocabulary:
        """Merge duplicates, plurals and (optionally) synonyms; see :class:`NormalisedVocabulary`.

        A class is named by the singular of its first name. Its :class:`Merge` (when it has more
        than one name) lists every other name: the name spelled like the class is the one kept
        (``["women", "woman"]`` -> ``'woman' <- 'women' (plural)``).
        """
        if isinstance(names, str):
            raise ValueError("names must be a list of class names, not one string")
        classes: list[str] = []
        mapping: dict[str, str] = {}
        synsets: dict[str, str] = {}
        by_singular: dict[str, str] = {}  # canonical singular -> class
        by_synset: dict[str, str] = {}
        members: dict[str, list[tuple[str, str]]] = {}  # class -> [(name, canonical singular)]
        for name in names:
            if not isinstance(name, str):
                raise ValueError(f"class names must be strings, got {name!r}")
            single = self.singular(name)
            canon = lexicon.IRREGULAR_PLURALS.get(single, single)  # people -> person
            if canon in by_singular:
                kept = by_singular[canon]
            else:
                sense = self.main_sense(single) if self.merge_synonyms else None
                key = sense.name() if sense is not None and _names_sense(single, sense) else ""
                if key and key in by_synset:
                    kept = by_synset[key]
                else:
                    kept = single
                    classes.append(kept)
                    synsets[kept] = sense.name() if sense is not None else ""
                    if key:
                        by_synset[key] = kept
                by_singular[canon] = kept
            mapping[name] = kept
            members.setdefault(kept, []).append((name, canon))
        merges = []
        for kept, group in members.items():
            if len(group) < 2:
                continue
            rep = next((m for m in group if lexicon.clean_phrase(m[0]) == kept), group[0])
            others = [m for m in group if m is not rep]
            seen, reasons = {lexicon.clean_phrase(rep[0])}, []
            for n, canon in others:
                clean = lexicon.clean_phrase(n)
                reasons.append("duplicate" if clean in seen else "plural" if canon == rep[1] else "synonym")
                seen.add(clean)
            reasons = tuple(reasons)
            merges.append(Merge(kept=kept, merged=tuple(n for n, _ in others), reasons=reasons,
                                synset=synsets[kept] if "synonym" in reasons else ""))
        return NormalisedVocabulary(classes=tuple(classes), mapping=mapping, merges=tuple(merges),
                                    synsets=synsets)

    # -- ontology ---------------------------------------------------------------------------
    def ontology(self, user_classes: Sequence[str], tags: Sequence[str]) -> dict[str, list[str]]:
        """``{user class: [tags that should trigger it]}`` (tags in the order given).

        A tag triggers a class when it is the class (same singular form or same main sense),
        when its main sense is a hyponym of the class's main sense (transitively, instances
        included), or, with ``use_glosses``, when the genus of its definition names the class
        (a word of the class's own sense).
        """
        if isinstance(user_classes, str) or isinstance(tags, str):
            raise ValueError("user_classes and tags must be lists of names")
        for n in [*user_classes, *tags]:
            if not isinstance(n, str):
                raise ValueError(f"class and tag names must be strings, got {n!r}")
        tag_info = [(t, self.singular(t), self.main_sense(t)) for t in tags]
        out: dict[str, list[str]] = {}
        for cls in user_classes:
            single = self.singular(cls)
            sense = self.main_sense(cls)
            below = _hyponym_closure(sense) if sense is not None else set()
            hits = []
            for tag, tag_single, tag_sense in tag_info:
                if tag_single == single or (tag_sense is not None and tag_sense.name() in below):
                    hits.append(tag)
                elif self.use_glosses and sense is not None and tag_sense is not None \
                        and self._genus_names(tag_sense, sense):
                    hits.append(tag)
            out[cls] = hits
        return out

    @staticmethod
    def _genus_names(sense, class_sense) -> bool:
        """Whether ``sense``'s definition genus ends in a word of ``class_sense`` itself (bus:
        "a vehicle carrying many passengers"); its hyponyms' words are too ambiguous ("a tank")."""
        genus = " " + definition_genus(sense.definition())  # its head: the last words
        return any(genus.endswith(f" {name}") for name in lexicon.lemma_names(class_sense))


def definition_genus(definition: str) -> str:
    """The head phrase of a WordNet definition: ``"a vehicle carrying many passengers; ..."`` ->
    ``vehicle``; ``"a large motor vehicle with ..."`` -> ``large motor vehicle``."""
    first = definition.split(";", 1)[0].lower()
    words = re.findall(r"[a-z][a-z'-]*|,|\(", first)
    while words and words[0] in lexicon.LEADING_WORDS:
        words = words[1:]
    genus = []
    for w in words:
        if w in GENUS_STOP or w in {",", "("} or (genus and (w.endswith("ing") or w.endswith("ed"))):
            break
        genus.append(w)
    if not genus or genus[-1] in GENUS_VAGUE:
        return ""
    return " ".join(genus[-3:])


def _names_sense(phrase: str, sense) -> bool:
    """Whether ``phrase`` is one of ``sense``'s own words (not merely its head noun's sense)."""
    return phrase.replace(" ", "_") in {lem.name().lower() for lem in sense.lemmas()} or \
        phrase in lexicon.lemma_names(sense)


def _hyponym_closure(sense) -> set[str]:
    found = {sense.name()}
    found.update(s.name() for s in sense.closure(lambda s: s.hyponyms() + s.instance_hyponyms()))
    return found
