"""openvocab taggers (RAM++, RAM, Tag2Text), open-set tag descriptions and tag text tools.

Importing this package registers its components into ``openvocab.registry``.
"""
from . import text  # noqa: F401  (WordNetBoxableFilter, SpacyCaptionParser)
from . import descriptions  # noqa: F401  (LLMTagDescriber, CLIPDescriptionEmbedder, CLIPTextEncoder)
from . import ram_plus  # noqa: F401  (RAMPlusTagger)
from . import ram  # noqa: F401  (RAMTagger)
from . import tag2text  # noqa: F401  (Tag2TextTagger, Tag2TextCaptioner)
