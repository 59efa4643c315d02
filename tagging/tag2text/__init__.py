"""Tag2Text image tagger and tag-guided captioner: model, generation, tokenizer, checkpoint conversion, stage."""
from .captioning import CaptionSettings, generate  # noqa: F401
from .convert import convert_state_dict  # noqa: F401
from .model import Tag2Text, Tag2TextOutput, build_tag2text_swin_b, build_tag2text_tiny  # noqa: F401
from .tagger import Tag2TextTagger  # noqa: F401
from .tokenizer import Tag2TextTokenizer  # noqa: F401
