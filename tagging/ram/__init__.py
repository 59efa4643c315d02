"""RAM (Recognize Anything, v1) image tagger: model, official checkpoint conversion, stage."""
from .convert import convert_state_dict  # noqa: F401
from .model import RAM, RAMOutput, build_ram_swin_l, build_ram_tiny  # noqa: F401
from .tagger import RAMTagger  # noqa: F401
