"""RAM++ (Recognize Anything Plus) image tagger: model, official checkpoint conversion, stage."""
from .convert import convert_state_dict  # noqa: F401
from .model import RAMPlus, RAMPlusOutput, build_ram_plus_swin_l, build_ram_plus_tiny  # noqa: F401
from ..recognize_anything.openset import load_openset_embeddings  # noqa: F401
from ..recognize_anything.preprocess import preprocess  # noqa: F401
from .tagger import RAMPlusTagger  # noqa: F401
from .train import RAMPlusTrainModel  # noqa: F401
