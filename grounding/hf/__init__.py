"""Models of ``transformers`` (>= 5) as openvocab stages; importing this package registers them.

* :class:`~.detector.HFDetector` (detector): Grounding DINO, MM-Grounding-DINO / LLMDet, OWLv2 / OWL-ViT,
  OmDet-Turbo;
* :class:`~.sam.HFSamMaskHead` (mask head): SAM, SAM-HQ, SAM 2;
* :class:`~.sam3.Sam3Segmenter` (segmenter): SAM 3 concept segmentation, tags in, boxes and masks out;
* :class:`~.clipseg.CLIPSegSegmenter` (stuff segmenter): CLIPSeg masks of tags without boxes;
* :class:`~.florence2.Florence2Captioner` (captioner): Florence-2 captions (one of its three caption tasks).

Weights are Hugging Face hub ids or local folders (:mod:`.loading`); known ones: :mod:`.weights`.
"""
from .clipseg import CLIPSegSegmenter  # noqa: F401
from .detector import HFDetector  # noqa: F401
from .florence2 import Florence2Captioner  # noqa: F401
from .sam import HFSamMaskHead  # noqa: F401
from .sam3 import Sam3Segmenter  # noqa: F401
