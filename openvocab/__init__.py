"""openvocab: open-vocabulary tagging, grounding and segmentation toolkit."""
__version__ = "0.1.0"
