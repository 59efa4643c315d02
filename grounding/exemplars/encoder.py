"""``HFRegionEncoder``: one embedding per image region from a ``transformers`` vision encoder (CLIP, DINOv2), for
prototype matching.

A region is a box of an image, optionally with its mask. It is cut out with some context around it
(``context``: a fraction of the box's size on each side), the pixels outside its mask are set to the image
processor's mean colour (``mask_background``; normalised, they are 0), and the cut-out is padded to a square with
the same colour, so the processor's resize and centre crop keep all of it. The embedding is the model's image
embedding (CLIP: ``get_image_features``; DINOv2: the pooled class token), L2-normalised.

``model=None`` with ``random=dict(model_type=..., **config)`` builds the encoder with random weights from a
transformers config (seeded; tests and offline smoke runs, e.g. ``configs/tiny_examples.py``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from grounding.hf.loading import HubModel, check_dtype, check_positive, check_unit, load

#: supported model types -> a name for messages
MODEL_TYPES = {"clip": "CLIP", "clip_vision_model": "CLIP vision tower", "dinov2": "DINOv2",
               "dinov2_with_registers": "DINOv2 with registers"}


class HFRegionEncoder(HubModel):
    """Region embeddings from a transformers vision encoder.

    Args:
        model: Hugging Face hub id (``"facebook/dinov2-small"``, ``"openai/clip-vit-base-patch32"``) or a folder;
            ``None`` with ``random``.
        revision: a hub revision to pin.
        random: a transformers config (``dict(model_type='dinov2', hidden_size=32, ...)``) for random weights.
        seed: the random weights' seed.
        context: context kept around a box, as a fraction of its width and height on each side.
        mask_background: set the pixels outside a region's mask to the mean colour.
        batch_size: regions embedded together.
        dtype: the weights' dtype.
    """

    what = "transformers vision encoder"

    def __init__(self, *, model: Optional[str] = "facebook/dinov2-small", revision: Optional[str] = None,
                 random: Optional[dict] = None, seed: int = 0, context: float = 0.1, mask_background: bool = True,
                 batch_size: int = 16, dtype: str = "float32") -> None:
        if (model is None) == (random is None):
            raise ValueError("give the encoder a model (hub id or folder) or random=dict(model_type=..., ...), "
                             "one of the two")
        if model is not None and (not isinstance(model, str) or not model):
            raise ValueError(f"model must be a Hugging Face hub id or a folder, got {model!r}")
        if random is not None and (not isinstance(random, dict) or random.get("model_type") not in MODEL_TYPES):
            raise ValueError(f"random must be a dict with a model_type among {', '.join(MODEL_TYPES)}")
        check_unit("context", context)
        check_positive("batch_size", batch_size)
        self.model, self.revision, self.random, self.seed = model, revision, random, int(seed)
        self.context, self.mask_background, self.batch_size = float(context), bool(mask_background), batch_size
        self.dtype = check_dtype(dtype)
        self.net = self.processor = None
        self.model_type: Optional[str] = None
        self.device: Optional[str] = None

    def required_files(self) -> list[str]:
        return [] if self.model is None else super().required_files()

    def remote_repos(self):
        return [] if self.model is None else super().remote_repos()

    def setup(self, device: str = "cpu") -> None:
        if self.net is not None and self.device == device:
            return
        if self.model is None:
            self.net, self.processor, self.model_type = _random_encoder(self.random, self.seed)
            self.net = self.net.eval().to(device)
        else:
            loaded = load(self.model, auto_class="AutoModel", types=MODEL_TYPES, device=device, dtype=self.dtype,
                          revision=self.revision, description=self.what)
            processor = loaded.processor
            self.net, self.model_type = loaded.model, loaded.model_type
            self.processor = getattr(processor, "image_processor", processor)
        self.device = device

    def _require(self):
        if self.net is None:
            raise ValueError(f"{type(self).__name__}.setup(device) must be called first")
        return self.net

    def fill(self) -> np.ndarray:
        """The mean colour (``uint8 [3]``) used outside masks and as padding."""
        return np.round(np.asarray(self.processor.image_mean, np.float64) * 255).clip(0, 255).astype(np.uint8)

    def cutout(self, image: np.ndarray, box: Sequence[float], mask: Optional[np.ndarray] = None) -> np.ndarray:
        """The square ``uint8 [s, s, 3]`` picture of one region that the encoder sees (module docstring)."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        dx, dy = (x2 - x1) * self.context, (y2 - y1) * self.context
        x1, y1 = max(int(np.floor(x1 - dx)), 0), max(int(np.floor(y1 - dy)), 0)
        x2, y2 = min(max(int(np.ceil(x2 + dx)), x1 + 1), w), min(max(int(np.ceil(y2 + dy)), y1 + 1), h)
        crop = image[y1:y2, x1:x2].copy()
        fill = self.fill()
        if mask is not None and self.mask_background:
            crop[~mask[y1:y2, x1:x2]] = fill
        ch, cw = crop.shape[:2]
        side = max(ch, cw)
        out = np.empty((side, side, 3), np.uint8)
        out[:] = fill
        top, left = (side - ch) // 2, (side - cw) // 2
        out[top:top + ch, left:left + cw] = crop
        return out

    def pixels(self, cutouts: Sequence[np.ndarray]) -> torch.Tensor:
        """``pixel_values [n, 3, S, S]`` of square cut-outs (the model's image processor)."""
        return self.processor(images=list(cutouts), return_tensors="pt")["pixel_values"]

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The model's image embeddings ``[n, D]`` (not normalised)."""
        net = self._require()
        pv = pixel_values.to(device=self.device, dtype=next(net.parameters()).dtype)
        with torch.no_grad():
            if self.model_type == "clip":
                return net.get_image_features(pixel_values=pv).pooler_output
            return net(pixel_values=pv).pooler_output

    def embed(self, image: np.ndarray, boxes: np.ndarray, masks: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
        """``float32 [N, D]`` L2-normalised embeddings of ``boxes`` (xyxy pixels; ``masks[i]``: ``bool [H, W]`` or
        ``None``) on one image."""
        self._require()
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, 0), np.float32)
        cuts = [self.cutout(image, b, None if masks is None else masks[i]) for i, b in enumerate(boxes)]
        rows = [self.features(self.pixels(cuts[s:s + self.batch_size])).float().cpu()
                for s in range(0, len(cuts), self.batch_size)]
        return torch.nn.functional.normalize(torch.cat(rows), dim=-1).numpy()


def _random_encoder(config: dict, seed: int):
    """``(model, image processor, model type)`` with random weights from a transformers config dict."""
    import transformers as hf

    cfg = dict(config)
    kind = cfg.pop("model_type")
    size = int(cfg.get("image_size", 224))
    torch.manual_seed(seed)
    if kind == "clip":
        model = hf.CLIPModel(hf.CLIPConfig(vision_config=cfg, text_config=dict(hidden_size=cfg.get("hidden_size", 32),
                                                                               num_hidden_layers=1,
                                                                               num_attention_heads=1,
                                                                               intermediate_size=32)))
    else:
        model = hf.AutoModel.from_config(hf.AutoConfig.for_model(kind, **cfg))
    processor = hf.CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return model, processor, kind

