"""openvocab: open-vocabulary tagging, grounding and segmentation toolkit.

``openvocab.Labeler`` (the Python API, :mod:`openvocab.labeler`) and ``openvocab.LabeledImage`` are imported on
first use, so ``import openvocab`` stays light (the CLI starts without torch).
"""
__version__ = "0.1.0"

from .cpu import passive_omp_wait as _passive_omp_wait  # noqa: E402

_passive_omp_wait()  # before torch starts its threads (idle OpenMP threads sleep instead of spinning; openvocab.cpu)

_LAZY = {"Labeler": "labeler", "LabeledImage": "labeled"}
__all__ = ["Labeler", "LabeledImage", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'openvocab' has no attribute {name!r}")
