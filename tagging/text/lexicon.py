"""WordNet look-ups shared by the text tools: phrase keys, senses, sense counts, head nouns."""
from __future__ import annotations

import re
from typing import Optional

#: determiners and similar words dropped from the front of a phrase
LEADING_WORDS = frozenset({"a", "an", "the", "some", "any", "this", "that", "these", "those"})
#: irregular plurals that WordNet's exception lists lack (``people`` is a noun of its own there)
IRREGULAR_PLURALS = {"people": "person"}
#: POS letters, most object-like first (``s`` is WordNet's adjective satellite)
POS_ORDER = ("n", "v", "a", "r")


def clean_phrase(text: str) -> str:
    """Lower case, single spaces, no surrounding punctuation or leading determiner."""
    words = re.sub(r"\s+", " ", text.strip().lower()).strip(" .,;:!?\"'()[]").split(" ")
    while len(words) > 1 and words[0] in LEADING_WORDS:
        words = words[1:]
    return " ".join(words)


def wordnet_keys(phrase: str) -> list[str]:
    """Spellings WordNet may index ``phrase`` under: ``fire_hydrant``, ``t-shirt``/``tshirt``..."""
    base = clean_phrase(phrase).replace(" ", "_")
    keys = [base]
    if "-" in base:
        keys += [base.replace("-", "_"), base.replace("-", "")]
    return [k for i, k in enumerate(keys) if k and k not in keys[:i]]


def synsets(wn, phrase: str, pos: Optional[str] = None) -> list:
    """Senses of ``phrase`` (inflected forms allowed: ``cars`` -> car), most frequent first."""
    for key in wordnet_keys(phrase):
        found = wn.synsets(key, pos=pos)
        if found:
            return found
    return []


def base_forms(wn, word: str, pos: str) -> list[str]:
    """WordNet base forms of ``word`` for ``pos`` (``riding`` -> ride, rid), exceptions first."""
    key = clean_phrase(word).replace(" ", "_")
    forms = wn._morphy(key, pos) if key else []
    return [f.replace("_", " ") for f in forms]


def lemma_count(wn, phrase: str, pos: str) -> int:
    """Tagged-corpus count of ``phrase`` over all its ``pos`` senses (sum of its lemmas' counts)."""
    total = 0
    for key in wordnet_keys(phrase):
        forms = set(wn._morphy(key, pos)) if key else set()
        for ss in wn.synsets(key, pos=pos):
            total += sum(lem.count() for lem in ss.lemmas() if lem.name().lower() in forms)
        if total:
            break
    return total


def is_base_form(wn, phrase: str, pos: str) -> bool:
    """Whether ``phrase`` itself is a ``pos`` lemma (``build`` yes, ``building`` no for verbs)."""
    return any(wn.lemmas(key, pos=pos) and key in wn._morphy(key, pos) for key in wordnet_keys(phrase))


def sense_count(wn, phrase: str, synset) -> int:
    """Tagged-corpus count of ``phrase``'s lemma (or its base form) in ``synset``."""
    forms = set()
    for key in wordnet_keys(phrase):
        forms.update(wn._morphy(key, synset.pos() if synset.pos() != "s" else "a"))
    return sum(lem.count() for lem in synset.lemmas() if lem.name().lower() in forms)


def ranked_senses(wn, phrase: str, pos: str) -> list:
    """``phrase``'s ``pos`` senses, most frequent first by its own sense counts (stable)."""
    senses = synsets(wn, phrase, pos)
    counts = [sense_count(wn, phrase, s) for s in senses]
    order = sorted(range(len(senses)), key=lambda i: -counts[i])
    return [senses[i] for i in order]


def singular_noun(wn, phrase: str) -> str:
    """``phrase`` cleaned, its last word in singular form (``fire hydrants`` -> ``fire hydrant``);
    words WordNet lists as nouns themselves (``glasses``) are kept."""
    text = clean_phrase(phrase)
    if not text or wn.lemmas(text.replace(" ", "_"), pos="n"):
        return text
    words = text.split(" ")
    if not wn.lemmas(words[-1], pos="n"):
        forms = base_forms(wn, words[-1], "n")
        if forms:
            words[-1] = forms[0]
    return " ".join(words)


def head_noun(phrase: str) -> str:
    """The head of a multi-word noun phrase: the last word, or the word before ``of``.

    ``"acrylic paint"`` -> ``paint``; ``"cup of coffee"`` -> ``cup``; ``"3D glasses"`` -> ``glasses``.
    """
    words = clean_phrase(phrase).split(" ")
    if "of" in words[1:]:
        words = words[:words.index("of", 1)]
    return words[-1]


def lemma_names(synset) -> list[str]:
    """A synset's words with spaces (``fire_hydrant`` -> ``fire hydrant``), lower case."""
    return [lem.name().replace("_", " ").lower() for lem in synset.lemmas()]
