"""PSALM (ECCV 2024): Phi-1.5 + a Swin-B vision tower + a Mask2Former-style mask decoder, every segmentation task
through one input schema (image, task instruction, condition prompt, mask tokens), in one forward pass.

Pure PyTorch on transformers 5 (``PhiModel``); loads the official checkpoint (``EnmingZhang/PSALM``) through
:func:`.convert.convert_state_dict` and strict loading.
"""
from .config import PSALMConfig, config_from_official
from .convert import convert_state_dict, read_checkpoint
from .loading import load_checkpoint, load_official_weights, random_model
from .model import PSALMModel, PSALMOutput, build_psalm, build_psalm_tiny
from .predictor import MaskResult, PSALMPredictor

__all__ = [
    "PSALMConfig", "config_from_official", "convert_state_dict", "read_checkpoint", "load_checkpoint", "load_official_weights", "random_model", "PSALMModel", "PSALMOutput",
    "build_psalm", "build_psalm_tiny", "MaskResult", "PSALMPredictor",
]
