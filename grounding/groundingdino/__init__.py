"""Grounding DINO: Swin + BERT open-set detector (official numerics, pure PyTorch).

Importing :mod:`grounding.groundingdino.detector` registers ``GroundingDINODetector`` in
``openvocab.registry.DETECTORS``.
"""
from .detector import GroundingDINODetector  # noqa: F401
from .train import GroundingDINOTrainModel  # noqa: F401  (MODELS: training wrapper)
