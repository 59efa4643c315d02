"""openvocab detectors (Grounding DINO; transformers detectors; PSALM), mask heads (TAP, SAM; transformers SAMs;
PSALM), segmenters (SAM 3, CLIPSeg, PSALM), a captioner (Florence-2), video trackers (SAM 2, SAM 3) and exemplar
stages (label by example: OWL, CLIPSeg, SegGPT, SAM 3, prototype matching).

Importing this package registers its components into ``openvocab.registry``.
"""
from . import tap  # noqa: F401  (TAPMaskHead)
from . import groundingdino  # noqa: F401  (GroundingDINODetector)
from . import sam  # noqa: F401  (SAMMaskHead)
from . import hf  # noqa: F401  (HFDetector, HFSamMaskHead, Sam3Segmenter, CLIPSegSegmenter, Florence2Captioner)
from . import psalm  # noqa: F401  (PSALMSegmenter, PSALMDetector, PSALMMaskHead)
from . import video  # noqa: F401  (Sam2VideoTracker, Sam3VideoTracker: trackers for openvocab's video jobs)
from . import exemplars  # noqa: F401  (label by example: OWL, CLIPSeg, SegGPT, SAM 3, prototype matching)
