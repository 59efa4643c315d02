"""SAM (Segment Anything) promptable mask head, built from the official ``segment_anything`` modules.

Importing this package registers ``SAMMaskHead`` into ``openvocab.registry.MASK_HEADS``
(configs: ``custom_imports = dict(imports=["grounding.sam"])``).
"""
from .mask_head import SAMMaskHead, to_regions
from .model import BUILDERS, build_sam, build_sam_tiny, build_sam_vit_b, build_sam_vit_h, build_sam_vit_l
from .predictor import SamBatchPredictor, SamPrediction, select_mask_index
from .weights import CHECKPOINT_VARIANT, CHECKPOINTS

__all__ = [
    "SAMMaskHead", "to_regions", "BUILDERS", "build_sam", "build_sam_tiny", "build_sam_vit_b",
    "build_sam_vit_l", "build_sam_vit_h", "SamBatchPredictor", "SamPrediction", "select_mask_index",
    "CHECKPOINT_VARIANT", "CHECKPOINTS",
]
