"""Captions -> tags of a tag list, with spaCy (and WordNet), the way RAM/Tag2Text mine labels.

Per caption (parsed in batches with ``nlp.pipe``):

1. multi-word phrases (up to ``max_ngram`` words) that are a tag, or a WordNet compound noun, are
   kept whole (``fire hydrant``, ``ice cream cone``), whatever spaCy's parse of them;
2. every other noun (objects, scenes: the roots of spaCy's noun chunks, plus nouns the small
   model leaves outside them) with its ``compound`` modifiers (``tennis racket``), falling back to
   the head noun alone; a free compound that is neither a tag nor a WordNet compound gives its
   nouns one by one (``snowy mountain slope`` -> mountain, slope); adjectives (attributes) and
   verbs (actions, auxiliaries excluded);
3. each phrase is normalised (lower case, lemma, plural -> singular, ``riding`` -> ``ride`` by
   WordNet's morphology) and mapped onto the tag list: its normalised form, its other lemma forms,
   the word as written, an irregular singular (``people`` -> person), then (``use_wordnet``) for
   a compound whose most frequent WordNet sense is a kind of its head noun, the head
   (``fire hydrant`` -> hydrant), then the words of the most frequent WordNet sense
   (``automobile`` -> ``car``). Phrases that match nothing are dropped.

Without a tag list (``tag_list=None``) the normalised phrases themselves are returned (every
compound kept whole: ``mountain slope``). Tags come
out in caption order, each once. Framing and quantity words (:data:`DEFAULT_IGNORE`: "photo",
"background", "couple", "group"...) are skipped even when the tag list has them (``ignore=()``
keeps them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from openvocab.registry import TOOLS
from openvocab.stages import CaptionParser

from . import lexicon
from .resources import SPACY_MODEL, load_spacy, load_wordnet

#: words of caption framing, quantity and light verbs that are never tags by default
DEFAULT_IGNORE = (
    "image", "photo", "picture", "photograph", "view", "front", "side", "top", "bottom", "middle",
    "background", "foreground", "lot", "couple", "pair", "bunch", "group", "variety", "number",
    "something", "someone", "thing", "way", "be", "have", "do", "get", "show", "feature",
    "contain", "include", "appear", "seem",
    "other", "several", "many", "few", "various", "numerous", "multiple", "each", "every", "both", "own",
)
NOUNS = ("NOUN", "PROPN")
#: a multi-word phrase may not start with these parts of speech
NO_START = frozenset({"DET", "PRON", "ADP", "CCONJ", "SCONJ", "AUX", "PART", "PUNCT", "NUM", "SPACE"})
#: spaCy POS -> WordNet POS
WN_POS = {"NOUN": "n", "PROPN": "n", "VERB": "v", "ADJ": "a"}


def read_tag_list(tag_list: Union[str, Path, Sequence[str]]) -> list[str]:
    """Tags from a text file (one per line) or a list; blank entries dropped."""
    if isinstance(tag_list, (str, Path)):
        path = Path(tag_list)
        if not path.is_file():
            raise ValueError(f"tag list file not found: {path}")
        names = path.read_text(encoding="utf-8").splitlines()
    elif isinstance(tag_list, Sequence):
        names = list(tag_list)
    else:
        raise ValueError(f"tag_list must be a file path or a list of tags, got {type(tag_list).__name__}")
    for n in names:
        if not isinstance(n, str):
            raise ValueError(f"tags must be strings, got {n!r}")
    tags = [n.strip() for n in names if n.strip()]
    if not tags:
        raise ValueError("the tag list is empty")
    return tags


@TOOLS.register_module()
class SpacyCaptionParser(CaptionParser):
    """Mines tags from captions (``openvocab parse-captions``); see the module docstring.

    Args:
        tag_list: a tag list file (one tag per line) or list; ``None`` returns normalised
            phrases instead of tags.
        model: spaCy pipeline package name.
        batch_size: captions per ``nlp.pipe`` batch.
        use_wordnet: use WordNet for morphology, compound nouns and synonyms (needs its data,
            see :mod:`tagging.text.setup_wordnet`); else spaCy lemmas and exact matches only.
        ignore: normalised words never returned.
        max_ngram: longest multi-word phrase looked for.
    """

    def __init__(self, *, tag_list: Union[str, Sequence[str], None], model: str = SPACY_MODEL,
                 batch_size: int = 64, use_wordnet: bool = True, ignore: Sequence[str] = DEFAULT_IGNORE,
                 max_ngram: int = 4) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_ngram < 1:
            raise ValueError(f"max_ngram must be >= 1, got {max_ngram}")
        self.tags: Optional[list[str]] = None if tag_list is None else read_tag_list(tag_list)
        self._index = None if self.tags is None else {lexicon.clean_phrase(t): t for t in self.tags}
        self.model = model
        self.batch_size = int(batch_size)
        self.use_wordnet = bool(use_wordnet)
        self.ignore = frozenset(lexicon.clean_phrase(w) for w in ignore)
        self.max_ngram = int(max_ngram)
        self._nlp = None
        self._wn = None
        self._memo: dict[tuple[tuple[str, ...], str], Optional[str]] = {}

    def setup(self, device: str = "cpu") -> None:
        """Load spaCy (and WordNet); raises :class:`~tagging.text.resources.TextResourceError`."""
        if self._nlp is None:
            self._nlp = load_spacy(self.model)
        if self.use_wordnet and self._wn is None:
            self._wn = load_wordnet()

    def parse(self, captions: Sequence[str]) -> list[list[str]]:
        if isinstance(captions, str):
            raise ValueError("captions must be a list of strings, not one string")
        for c in captions:
            if not isinstance(c, str):
                raise ValueError(f"captions must be strings, got {c!r}")
        self.setup()
        docs = self._nlp.pipe(list(captions), batch_size=self.batch_size, disable=["ner"])
        return [self.tags_of(doc) for doc in docs]

    # -- one parsed caption -----------------------------------------------------------------
    def tags_of(self, doc) -> list[str]:
        """The tags of one spaCy ``Doc``, in caption order, each once."""
        found: list[tuple[int, str]] = []
        consumed: set[int] = set()
        for start, end, tag in self._multiword(doc):
            consumed.update(range(start, end))
            found.append((start, tag))
        for tok in doc:
            if tok.i in consumed:
                continue
            tag = self._single(tok, consumed)
            if tag is not None:
                found.append((tok.i, tag))
        out: list[str] = []
        for _, tag in sorted(found, key=lambda x: x[0]):
            if tag not in out:
                out.append(tag)
        return out

    def _multiword(self, doc):
        """``(start, end, tag)`` of non-overlapping multi-word phrases, longest first."""
        taken: set[int] = set()
        for n in range(min(self.max_ngram, len(doc)), 1, -1):
            for i in range(len(doc) - n + 1):
                span = doc[i:i + n]
                if taken.intersection(range(i, i + n)) or span[0].pos_ in NO_START:
                    continue
                if not all(t.is_alpha or t.text.replace("-", "").isalnum() for t in span):
                    continue
                words = [t.lower_ for t in span]
                # spaCy's lemma only for a noun: "cat sleeping" is no "cat sleep" (a catnap), while
                # "teddy bears" (parsed as a verb) still is a teddy bear by WordNet's noun forms
                last = self._noun_forms(span[-1], spacy_lemma=span[-1].pos_ in NOUNS)
                forms = _unique([" ".join(words[:-1] + [f]) for f in last])
                if not any(self._known_compound(f) for f in forms):
                    continue
                tag = self._map(forms, "n")
                if tag is not None:
                    taken.update(range(i, i + n))
                    yield i, i + n, tag

    def _known_compound(self, phrase: str) -> bool:
        if self._index is not None and phrase in self._index:
            return True
        return self._wn is not None and bool(self._wn.lemmas(phrase.replace(" ", "_"), pos="n"))

    def _single(self, tok, consumed: set[int]) -> Optional[str]:
        if tok.pos_ in NOUNS:
            head = tok.head
            if tok.dep_ == "compound" and head.pos_ in NOUNS and head.i not in consumed \
                    and tok in self._compound_mods(head, consumed) and self._compound_is_unit(head, consumed):
                return None  # part of its head's compound noun
            mods = self._compound_mods(tok, consumed)
            if mods:
                tag = self._map(self._compound_forms(tok, mods), "n")
                if tag is not None:
                    return tag
            return self._map(self._noun_forms(tok), "n")
        if tok.pos_ == "VERB":
            return self._map(self._verb_forms(tok), "v")
        if tok.pos_ == "ADJ":
            return self._map(self._adj_forms(tok), "a")
        return None

    @staticmethod
    def _compound_mods(tok, consumed: set[int]) -> list:
        """``tok``'s contiguous ``compound`` noun modifiers, left to right."""
        mods: list = []
        for child in reversed(list(tok.lefts)):
            if child.dep_ != "compound" or child.pos_ not in NOUNS or child.i in consumed \
                    or child.i != tok.i - len(mods) - 1:
                break
            mods.insert(0, child)
        return mods

    def _compound_forms(self, tok, mods: list) -> list[str]:
        return [" ".join([m.lower_ for m in mods] + [f]) for f in self._noun_forms(tok)]

    def _compound_is_unit(self, head, consumed: set[int]) -> bool:
        """Whether ``head``'s compound is one concept: a tag (or maps onto one), a WordNet compound
        (``fire truck``), or spaCy's parse without WordNet to ask. Else its nouns count one by one."""
        forms = self._compound_forms(head, self._compound_mods(head, consumed))
        if self._wn is None or self._map(forms, "n") is not None:
            return True
        return any(self._wn.lemmas(f.replace(" ", "_"), pos="n") for f in forms)

    # -- normalisation ----------------------------------------------------------------------
    def _noun_forms(self, tok, spacy_lemma: bool = True) -> list[str]:
        forms = []
        if self._wn is not None:
            forms.append(lexicon.singular_noun(self._wn, tok.lower_))
        forms += [tok.lemma_.lower(), tok.lower_] if spacy_lemma else [tok.lower_]
        if tok.lower_ in lexicon.IRREGULAR_PLURALS:  # tried after the word's own forms
            forms.append(lexicon.IRREGULAR_PLURALS[tok.lower_])
        return _unique(forms)

    def _verb_forms(self, tok) -> list[str]:
        forms = []
        if self._wn is not None:  # "riding" -> ride (spaCy's small model says "rid")
            base = lexicon.base_forms(self._wn, tok.lower_, "v")
            forms += sorted(base, key=lambda f: -lexicon.lemma_count(self._wn, f, "v"))
        forms += [tok.lemma_.lower(), tok.lower_]
        return _unique(forms)

    def _adj_forms(self, tok) -> list[str]:
        forms = [tok.lemma_.lower()]
        if self._wn is not None:  # "bigger" -> big
            forms += lexicon.base_forms(self._wn, tok.lower_, "a")
        return _unique(forms + [tok.lower_])

    def _map(self, forms: list[str], pos: str) -> Optional[str]:
        """The tag for the first form that matches (normalised, lemma, as written, synonym)."""
        key = (tuple(forms), pos)
        if key not in self._memo:
            if len(self._memo) > 200_000:
                self._memo.clear()
            self._memo[key] = self._lookup([f for f in forms if f], pos)
        return self._memo[key]

    def _lookup(self, forms: list[str], pos: str) -> Optional[str]:
        if not forms or forms[0] in self.ignore:
            return None
        if self._index is None:
            return forms[0]
        for f in forms:
            if f in self._index:
                return self._index[f]
        if self._wn is not None:
            for f in forms:
                senses = lexicon.ranked_senses(self._wn, f, pos)
                if senses and " " in f:  # "fire hydrant" IS-A hydrant: the head noun as tag
                    head = f.rsplit(" ", 1)[1]
                    if head in self._index and any(head in lexicon.lemma_names(h) for h in senses[0].hypernyms()):
                        return self._index[head]
                if senses:
                    hits = [n for n in lexicon.lemma_names(senses[0]) if n in self._index and n not in self.ignore]
                    if not hits:
                        break
                    # a synonym sharing a word with the phrase first: "fire hydrant" -> hydrant, not plug
                    words = set(f.split(" "))
                    hits.sort(key=lambda n: not words.intersection(n.split(" ")))
                    return self._index[hits[0]]
        return None


def _unique(items: list[str]) -> list[str]:
    return [x for i, x in enumerate(items) if x and x not in items[:i]]
