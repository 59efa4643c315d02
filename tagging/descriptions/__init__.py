"""Open-set tags from LLM descriptions (RAM++ recipe): describe new tags with an LLM, embed the
descriptions with CLIP's text encoder, and hand the file to the tagger (``openset=...``).

Importing this package registers ``LLMTagDescriber``, ``CLIPDescriptionEmbedder`` (TOOLS),
``CLIPTextEncoder`` (TEXT_ENCODERS) and the description backends.
"""
from . import backends, clip_text, describer, embed  # noqa: F401
from .files import OPENSET_FORMAT, read_descriptions, write_descriptions  # noqa: F401
