"""openvocab taggers (RAM++), open-set tag descriptions and tag text tools.

Importing this package registers its components into ``openvocab.registry``.
"""
from . import text  # noqa: F401  (WordNetBoxableFilter, SpacyCaptionParser)
from . import descriptions  # noqa: F401  (LLMTagDescriber, CLIPDescriptionEmbedder, CLIPTextEncoder)
from . import ram_plus  # noqa: F401  (RAMPlusTagger)
