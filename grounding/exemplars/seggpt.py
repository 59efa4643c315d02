"""``SegGptExemplarSegmenter``: SegGPT in-context segmentation through ``transformers`` (label by example).

SegGPT paints the mask of a target image after a prompt pair (an example image and its mask). Here a class's
prompts are its reference images, each with the masks of that class's positive examples on it (an example
without a mask gives its box, filled); a binary mask is turned into SegGPT's colours by
``SegGptImageProcessor(num_labels=1)`` (black background, white class). A class with several prompts runs them as
one batch with SegGPT's ``feature_ensemble`` (its few-shot recipe), and the batch's predictions are averaged. The
painted target is read back by transformers' ``post_process_semantic_segmentation(num_labels=1)``; each connected
region of the class of at least ``min_area`` of the image is one instance (``split='none'``: one per class),
scored by its mean whiteness (the painted value, 0 = black, 1 = white). Negative examples are not used.
"""
from __future__ import annotations

from types import SimpleNamespace
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

MODEL_TYPES = {"seggpt": "SegGPT"}
EMBEDDINGS = ("instance", "semantic")


@EXEMPLAR_DETECTORS.register_module()
class SegGptExemplarSegmenter(HubModel, ExemplarDetector):
    """SegGPT (``SegGptForImageSegmentation`` + ``SegGptImageProcessor``) masks of example classes.

    Args:
        model: Hugging Face hub id (``"BAAI/seggpt-vit-large"``) or a local folder.
        revision: a hub revision to pin.
        min_area: smallest instance kept, as a fraction of the image's pixels.
        split: ``'components'`` (one instance per connected region) or ``'none'`` (one per class).
        max_prompts: at most this many prompt images per class (the first ones; each is one batch row).
        embedding_type: SegGPT's prompt embedding, ``'instance'`` (its default) or ``'semantic'``.
        dtype: the weights' dtype.
    """

    what = "transformers SegGPT"
    gives_masks = True

    def __init__(self, *, model: str = "BAAI/seggpt-vit-large", revision: Optional[str] = None,
                 min_area: float = 0.001, split: str = "components", max_prompts: int = 8,
                 embedding_type: str = "instance", dtype: str = "float32") -> None:
        check_model(model)
        check_unit("min_area", min_area)
        check_positive("max_prompts", max_prompts)
        if embedding_type not in EMBEDDINGS:
            raise ValueError(f"embedding_type must be one of {', '.join(EMBEDDINGS)} (got {embedding_type!r})")
        self.model, self.revision, self.min_area, self.split = model, revision, float(min_area), check_split(split)
        self.max_prompts, self.embedding_type, self.dtype = max_prompts, embedding_type, check_dtype(dtype)
        self.net = self.processor = None
        self.device: Optional[str] = None
        self._prompts = PerExampleSet(self._make_prompts)

    def setup(self, device: str = "cpu") -> None:
        if self.net is not None and self.device == device:
            return
        loaded = load(self.model, auto_class="SegGptForImageSegmentation", types=MODEL_TYPES, device=device,
                      dtype=self.dtype, revision=self.revision, description=self.what)
        processor = loaded.processor
        self.net, self.processor, self.device = loaded.model, getattr(processor, "image_processor", processor), device
        self._prompts.clear()

    def _require(self):
        if self.net is None:
            raise ValueError(f"{type(self).__name__}.setup(device) must be called first")
        return self.net

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """``pixel_values [3, H', W']`` of one target image (SegGPT's image processor)."""
        self._require()
        image_size(image)
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]

    def prompt(self, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(prompt_pixel_values, prompt_masks)`` ``[3, H', W']`` of one prompt pair (a binary mask)."""
        enc = self.processor(images=None, prompt_images=image, prompt_masks=mask.astype(np.uint8), num_labels=1,
                             return_tensors="pt")
        return enc["prompt_pixel_values"][0], enc["prompt_masks"][0]

    def _make_prompts(self, examples: ExampleSet) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per class, its prompt pairs stacked: ``(prompt_pixel_values [k, ...], prompt_masks [k, ...])``."""
        out = []
        for name in examples.classes:
            by_image: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for e in examples.of_class(name):
                image, mask = by_image.get(e.image_id, (e.image, np.zeros(e.image.shape[:2], bool)))
                by_image[e.image_id] = (image, mask | e.region_mask())
            pairs = [self.prompt(image, mask) for image, mask in list(by_image.values())[:self.max_prompts]]
            out.append((torch.stack([p for p, _ in pairs]), torch.stack([m for _, m in pairs])))
        return out

    def prepare_examples(self, examples: ExampleSet) -> list[str]:
        prompts = self._prompts.get(examples)
        counts = ", ".join(f"{n} {len(p)}" for n, (p, _) in zip(examples.classes, prompts))
        return [f"{type(self).__name__}: prompt images per class: {counts}"]

    def paint(self, pixel_values: torch.Tensor, prompt_pixels: torch.Tensor, prompt_masks: torch.Tensor,
              size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``(class mask bool [H, W], whiteness float [H, W])`` of one processed target after one class's prompts."""
        net = self._require()
        dtype = next(net.parameters()).dtype
        k = len(prompt_pixels)
        with torch.no_grad():
            out = net(pixel_values=pixel_values[None].to(device=self.device, dtype=dtype).expand(k, -1, -1, -1),
                      prompt_pixel_values=prompt_pixels.to(device=self.device, dtype=dtype),
                      prompt_masks=prompt_masks.to(device=self.device, dtype=dtype), feature_ensemble=k > 1,
                      embedding_type=self.embedding_type)
        painted = out.pred_masks.float().mean(0, keepdim=True).cpu()  # the ensemble's rows, averaged
        seg = self.processor.post_process_semantic_segmentation(SimpleNamespace(pred_masks=painted),
                                                                target_sizes=[size], num_labels=1)[0]
        target = painted[:, :, painted.shape[2] // 2:]  # the painted half (the prompt's is on top)
        std = torch.tensor(self.processor.image_std).reshape(1, 3, 1, 1)
        mean = torch.tensor(self.processor.image_mean).reshape(1, 3, 1, 1)
        white = (target * std + mean).clamp(0, 1).mean(1, keepdim=True)
        white = F.interpolate(white, size=size, mode="nearest")[0, 0]
        return seg.numpy() == 1, white.numpy()

    def detect_examples(self, images: Sequence[np.ndarray], examples: ExampleSet,
                        prepared: Optional[Sequence[torch.Tensor]] = None) -> list[ExampleMatches]:
        self._require()
        if prepared is not None and len(prepared) != len(images):
            raise ValueError("one prepared input per image is required")
        prompts = self._prompts.get(examples)
        out = []
        for i, image in enumerate(images):
            pv = prepared[i] if prepared is not None else self.prepare(image)
            found = []
            for name, (pixels, masks) in zip(examples.classes, prompts):
                mask, white = self.paint(pv, pixels, masks, image_size(image))
                found.append(mask_instances(mask, white, name, split=self.split, min_area=self.min_area))
            both = Instances.concatenate([f for f in found if f is not None])
            out.append(ExampleMatches(both.detections, both.regions))
        return out
