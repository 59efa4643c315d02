"""The published ``transformers`` checkpoints the HF stages are configured with (data only; resolved in ``setup()``).

Any other hub id or local folder of a supported model type works too; these are the ones the configs name and the
README's table lists (``tests/test_hf_weights.py`` keeps the two in step). ``licence`` is the licence as the
model card (or, where the card states none, the release it comes from) publishes it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HFModel:
    """A published checkpoint: hub ``repo``, the ``stage`` class that runs it, what it gives, its licence."""

    repo: str
    stage: str
    gives: str
    licence: str


#: Microsoft's card of the original release states MIT (read through third-party copies; the port's own card and
#: the original could not be opened here)
FLORENCE2_LICENCE = "MIT (Microsoft's Florence-2 release; not verified on the cards)"

HF_MODELS: tuple[HFModel, ...] = (
    HFModel("IDEA-Research/grounding-dino-tiny", "HFDetector", "boxes per tag (captions, token-span labels)",
            "Apache-2.0"),
    HFModel("IDEA-Research/grounding-dino-base", "HFDetector", "boxes per tag (captions, token-span labels)",
            "Apache-2.0"),
    HFModel("openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det", "HFDetector",
            "boxes per tag (captions, token-span labels)", "Apache-2.0 (MMDetection release)"),
    HFModel("iSEE-Laboratory/llmdet_tiny", "HFDetector", "boxes per tag (captions, token-span labels)", "Apache-2.0"),
    HFModel("google/owlv2-base-patch16-ensemble", "HFDetector", "boxes per tag (one text query each)", "Apache-2.0"),
    HFModel("google/owlvit-base-patch32", "HFDetector", "boxes per tag (one text query each)", "Apache-2.0"),
    HFModel("omlab/omdet-turbo-swin-tiny-hf", "HFDetector", "boxes per tag (class list + task prompt)",
            "Apache-2.0"),
    HFModel("facebook/sam-vit-huge", "HFSamMaskHead", "a mask and its predicted IoU per box", "Apache-2.0"),
    HFModel("syscv-community/sam-hq-vit-huge", "HFSamMaskHead", "a mask and its predicted IoU per box",
            "Apache-2.0 (SAM-HQ release; the card states none)"),
    HFModel("facebook/sam2.1-hiera-large", "HFSamMaskHead", "a mask and its predicted IoU per box", "Apache-2.0"),
    HFModel("facebook/sam3", "Sam3Segmenter", "every instance of each tag: box, mask, score",
            "SAM License (Meta; gated)"),
    HFModel("CIDAS/clipseg-rd64-refined", "CLIPSegSegmenter", "a mask per tag without boxes (stuff)",
            "Apache-2.0"),
    HFModel("florence-community/Florence-2-base", "Florence2Captioner", "a caption per image (not tag-guided)",
            FLORENCE2_LICENCE),
    HFModel("florence-community/Florence-2-large", "Florence2Captioner", "a caption per image (not tag-guided)",
            FLORENCE2_LICENCE),
    HFModel("BAAI/seggpt-vit-large", "SegGptExemplarSegmenter", "masks like the examples' masks (in-context)",
            "Apache-2.0 (model card)"),
    HFModel("facebook/dinov2-small", "PrototypeMatcher", "region embeddings matched to the examples' prototypes",
            "Apache-2.0"),
)
