"""``CLIPSegExemplarSegmenter``: CLIPSeg with visual prompts through ``transformers`` (label by example).

CLIPSeg conditions its decoder on one CLIP embedding; with a visual prompt that embedding is the CLIP image
embedding of a prompt image (``conditional_pixel_values``: transformers' ``get_conditional_embeddings``). Here each
example's crop is a prompt image, and a class's conditional embedding is the mean of its examples' embeddings
(negative examples are not used). Per class and image, the soft mask is brought to the image size (bilinear, as
the CLIPSeg examples do), thresholded, and each connected region of at least ``min_area`` of the image becomes one
instance (``split='none'``: the whole mask one instance), scored by its mean probability.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from grounding.hf.loading import HubModel, check_dtype, check_model, check_positive, check_unit, image_size, load
from openvocab.examples import ExampleMatches, ExampleSet
from openvocab.registry import EXEMPLAR_DETECTORS
from openvocab.stages import ExemplarDetector
from openvocab.structures import Instances

from .common import PerExampleSet, check_split, mask_instances

MODEL_TYPES = {"clipseg": "CLIPSeg"}


@EXEMPLAR_DETECTORS.register_module()
class CLIPSegExemplarSegmenter(HubModel, ExemplarDetector):
    """CLIPSeg (``CLIPSegForImageSegmentation``) masks of example classes, the examples' crops as visual prompts.

    Args:
        model: Hugging Face hub id (``"CIDAS/clipseg-rd64-refined"``) or a local folder.
        revision: a hub revision to pin.
        threshold: probability threshold of the masks.
        min_area: smallest instance kept, as a fraction of the image's pixels.
        split: ``'components'`` (one instance per connected region) or ``'none'`` (one per class).
        class_batch_size: classes decoded together on one image.
        dtype: the weights' dtype.
    """

    what = "transformers CLIPSeg"
    gives_masks = True

    def __init__(self, *, model: str = "CIDAS/clipseg-rd64-refined", revision: Optional[str] = None,
                 threshold: float = 0.5, min_area: float = 0.001, split: str = "components",
                 class_batch_size: int = 8, dtype: str = "float32") -> None:
        check_model(model)
        check_unit("threshold", threshold)
        check_unit("min_area", min_area)
        check_positive("class_batch_size", class_batch_size)
        self.model, self.revision, self.threshold, self.min_area = model, revision, float(threshold), float(min_area)
        self.split, self.class_batch_size, self.dtype = check_split(split), class_batch_size, check_dtype(dtype)
        self.net = self.processor = None
        self.device: Optional[str] = None
        self._prompts = PerExampleSet(self._make_prompts)

    def setup(self, device: str = "cpu") -> None:
        if self.net is not None and self.device == device:
            return
        loaded = load(self.model, auto_class="CLIPSegForImageSegmentation", types=MODEL_TYPES, device=device,
                      dtype=self.dtype, revision=self.revision, description=self.what)
        self.net, self.processor, self.device = loaded.model, loaded.processor, device
        self._prompts.clear()

    def _require(self):
        if self.net is None:
            raise ValueError(f"{type(self).__name__}.setup(device) must be called first")
        return self.net

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """``pixel_values [3, S, S]`` of one image (CLIPSeg's image processor)."""
        self._require()
        image_size(image)
        return self.processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def prompt_pixels(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """``conditional_pixel_values [n, 3, S, S]`` of prompt images (the processor's ``visual_prompt``)."""
        return self.processor.image_processor(images=[np.ascontiguousarray(c) for c in crops],
                                              return_tensors="pt")["pixel_values"]

    def _make_prompts(self, examples: ExampleSet) -> torch.Tensor:
        """Each class's conditional embedding ``[C, D]``: the mean of its examples' (their crops as prompts)."""
        net = self._require()
        dtype = next(net.parameters()).dtype
        rows = []
        with torch.no_grad():
            for name in examples.classes:
                crops = [e.crop() for e in examples.of_class(name)]
                pv = self.prompt_pixels(crops).to(device=self.device, dtype=dtype)
                rows.append(net.get_conditional_embeddings(batch_size=len(crops), conditional_pixel_values=pv).mean(0))
        return torch.stack(rows)

    def prepare_examples(self, examples: ExampleSet) -> list[str]:
        self._prompts.get(examples)
        return [f"{type(self).__name__}: {len(examples.classes)} example classes, one visual prompt each (the mean "
                "embedding of its examples' crops)"]

    def probabilities(self, pixel_values: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """Soft masks ``[n, S, S]`` of ``n`` conditional embeddings on one processed image."""
        net = self._require()
        n = len(prompts)
        dtype = next(net.parameters()).dtype
        pv = pixel_values[None].to(device=self.device, dtype=dtype).expand(n, -1, -1, -1)
        with torch.no_grad():
            logits = net(pixel_values=pv, conditional_embeddings=prompts.to(dtype)).logits
        return logits.float().sigmoid().reshape(n, *logits.shape[-2:]).cpu()

    def detect_examples(self, images: Sequence[np.ndarray], examples: ExampleSet,
                        prepared: Optional[Sequence[torch.Tensor]] = None) -> list[ExampleMatches]:
        self._require()
        if prepared is not None and len(prepared) != len(images):
            raise ValueError("one prepared input per image is required")
        prompts = self._prompts.get(examples)
        out = []
        for i, image in enumerate(images):
            pv = prepared[i] if prepared is not None else self.prepare(image)
            size = image_size(image)
            found = []
            for s in range(0, len(prompts), self.class_batch_size):
                probs = self.probabilities(pv, prompts[s:s + self.class_batch_size])
                full = F.interpolate(probs[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].numpy()
                for k, p in enumerate(full):
                    found.append(mask_instances(p > self.threshold, p, examples.classes[s + k], split=self.split,
                                                min_area=self.min_area))
            both = Instances.concatenate([f for f in found if f is not None])
            out.append(ExampleMatches(both.detections, both.regions))
        return out
