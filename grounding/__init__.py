"""openvocab detectors (Grounding DINO) and mask heads (TAP, SAM).

Importing this package registers its components into ``openvocab.registry``.
"""
from . import tap  # noqa: F401  (TAPMaskHead)
from . import groundingdino  # noqa: F401  (GroundingDINODetector)
from . import sam  # noqa: F401  (SAMMaskHead)
