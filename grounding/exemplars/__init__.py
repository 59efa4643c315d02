"""Label by example: the exemplar stages (``EXEMPLAR_DETECTORS``), all through ``transformers`` (>= 5); importing this
package registers them.

* :class:`~.owl.OwlExemplarDetector`: OWLv2 / OWL-ViT image-guided detection (boxes);
* :class:`~.clipseg.CLIPSegExemplarSegmenter`: CLIPSeg, the examples' crops as visual prompts (masks);
* :class:`~.seggpt.SegGptExemplarSegmenter`: SegGPT in-context segmentation (masks);
* :class:`~.sam3.Sam3ExemplarSegmenter`: SAM 3 exemplar boxes, on the images that hold the examples (masks);
* :class:`~.matcher.PrototypeMatcher`: region proposals (any mask head's automatic mode, or OWLv2's objectness)
  embedded by CLIP / DINOv2 and matched to example prototypes with calibrated thresholds.
"""
from .clipseg import CLIPSegExemplarSegmenter  # noqa: F401
from .matcher import PrototypeMatcher  # noqa: F401
from .owl import OwlExemplarDetector  # noqa: F401
from .sam3 import Sam3ExemplarSegmenter  # noqa: F401
from .seggpt import SegGptExemplarSegmenter  # noqa: F401
