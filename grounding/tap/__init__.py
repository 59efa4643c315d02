"""TAP (Tokenize Anything via Prompting) promptable mask head: masks, region concepts, captions.

Importing this package registers ``TAPMaskHead`` into ``openvocab.registry.MASK_HEADS``
(configs: ``custom_imports = dict(imports=["grounding.tap"])``).
"""
from .concepts import (ConceptMatrix, RandomTextEncoder, build_concept_matrix, concepts_from_spec,
                       load_concept_matrix, save_concept_matrix)
from .convert import convert_state_dict, read_tap_checkpoint
from .mask_head import TAPMaskHead
from .model import (TapModel, build_tap, build_tap_tiny, build_tap_vit_b, build_tap_vit_h,
                    build_tap_vit_l)
from .predictor import TapPrediction, TapPredictor

__all__ = [
    "ConceptMatrix", "RandomTextEncoder", "build_concept_matrix", "concepts_from_spec",
    "load_concept_matrix", "save_concept_matrix",
    "convert_state_dict", "read_tap_checkpoint", "TAPMaskHead", "TapModel", "build_tap",
    "build_tap_tiny", "build_tap_vit_b", "build_tap_vit_l", "build_tap_vit_h", "TapPrediction",
    "TapPredictor",
]
