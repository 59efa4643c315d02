"""PSALM (ECCV 2024): Phi-1.5 + a Swin-B vision tower + a Mask2Former-style mask decoder, every segmentation task
through one input schema (image, task instruction, condition prompt, mask tokens), in one forward pass.

Pure PyTorch on transformers 5 (``PhiModel``); loads the official checkpoint (``EnmingZhang/PSALM``) through
:func:`.convert.convert_state_dict` and strict loading. Importing this package registers three faces of the
model: ``PSALMSegmenter`` (SEGMENTERS: tags -> instance masks), ``PSALMDetector`` (DETECTORS: tags or free text ->
boxes) and ``PSALMMaskHead`` (MASK_HEADS: boxes / points -> masks).
"""
from .config import PSALMConfig, config_from_official
from .convert import convert_state_dict, read_checkpoint
from .detector import PSALMDetector
from .loading import load_checkpoint, load_official_weights, random_model
from .mask_head import PSALMMaskHead
from .model import PSALMModel, PSALMOutput, build_psalm, build_psalm_tiny
from .predictor import MaskResult, PSALMPredictor
from .segmenter import PSALMSegmenter

__all__ = [
    "PSALMConfig", "config_from_official", "convert_state_dict", "read_checkpoint", "PSALMDetector",
    "load_checkpoint", "load_official_weights", "random_model", "PSALMMaskHead", "PSALMModel", "PSALMOutput",
    "build_psalm", "build_psalm_tiny", "MaskResult", "PSALMPredictor", "PSALMSegmenter",
]
