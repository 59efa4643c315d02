"""Tag text tools (spaCy + WordNet, offline): caption parser, vocabulary normaliser, boxable filter.

Importing this package registers ``SpacyCaptionParser`` (``openvocab.registry.TOOLS``) and
``WordNetBoxableFilter`` (``openvocab.registry.BOXABLE_FILTERS``). spaCy and WordNet load lazily,
on first use; :mod:`tagging.text.setup_wordnet` installs the WordNet data.
"""
from .boxable import TagClass, WordNetBoxableFilter, read_override_file
from .caption_parser import SpacyCaptionParser, read_tag_list
from .resources import TextResourceError, find_wordnet, load_spacy, load_wordnet
from .vocabulary import Merge, NormalisedVocabulary, VocabularyNormaliser

__all__ = [
    "Merge", "NormalisedVocabulary", "SpacyCaptionParser", "TagClass", "TextResourceError",
    "VocabularyNormaliser", "WordNetBoxableFilter", "find_wordnet", "load_spacy", "load_wordnet",
    "read_override_file", "read_tag_list",
]
