"""Video trackers on transformers' SAM video models, registered in ``openvocab.registry.TRACKERS``:
``Sam2VideoTracker`` (box prompts from the pipeline's keyframe detections, masks propagated by SAM 2 / SAM 3's
tracker) and ``Sam3VideoTracker`` (the video's tags as SAM 3 text prompts)."""
from .sam2 import Sam2VideoTracker  # noqa: F401
from .sam3 import Sam3VideoTracker  # noqa: F401
