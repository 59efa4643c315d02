"""``OwlExemplarDetector``: OWLv2 / OWL-ViT image-guided detection through ``transformers`` (label by example).

OWL scores every box of an image (one per patch) against query embeddings; image-guided detection takes the
queries from example images instead of text. Each example gives one query embedding, taken from its reference
image in one of two ways:

* ``query='box'`` (default; the box-embedding path): the reference image is embedded whole, and the query is the
  class embedding of one of its predicted boxes: among the boxes whose IoU with the example's box is at least 0.8
  of the best IoU (generalised IoU when none overlaps), the one least similar to the image's mean embedding (the
  rule of transformers' OWL-ViT ``embed_image_query``, there applied to the whole image's box);
* ``query='crop'``: the example's crop is the query image and the query is chosen by the model's own
  ``embed_image_query`` (OWLv2: the most object-like box; OWL-ViT: the rule above with the whole crop), exactly what
  ``image_guided_detection`` does.

A class with several examples has several queries, and a box takes its best query's score (``merge='max'``: as
transformers' ``post_process_image_guided_detection`` takes the max over queries), or one query, the mean of its
examples' normalised embeddings (``merge='mean'``). A negative example is a query of its own: a box whose best
query is a negative one is dropped. Scores are sigmoid probabilities from transformers'
``post_process_object_detection`` (which also maps OWLv2's boxes from its square-padded input back to the image),
then per-class NMS (``nms_iou``; transformers' image-guided post-processing uses 0.3) and ``max_detections``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from grounding.hf.loading import HubModel, check_dtype, check_model, check_positive, check_unit, image_size, load
from openvocab.boxes import merge_detections
from openvocab.examples import Example, ExampleMatches, ExampleSet
from openvocab.registry import EXEMPLAR_DETECTORS
from openvocab.stages import ExemplarDetector
from openvocab.structures import Detections

from .common import PerExampleSet

MODEL_TYPES = {"owlv2": "OWLv2", "owlvit": "OWL-ViT"}
QUERIES = ("box", "crop")
MERGES = ("max", "mean")


@dataclass(frozen=True)
class Queries:
    """An example set's query embeddings ``[Q, D]``, the class index of each (``-1 - k``: a negative query of class
    ``k``), and the class names."""

    embeds: torch.Tensor
    classes: tuple[int, ...]
    names: tuple[str, ...]


@EXEMPLAR_DETECTORS.register_module()
class OwlExemplarDetector(HubModel, ExemplarDetector):
    """OWLv2 / OWL-ViT (``Owlv2ForObjectDetection`` / ``OwlViTForObjectDetection``) image-guided detection.

    Args:
        model: Hugging Face hub id (``"google/owlv2-base-patch16-ensemble"``) or a local folder.
        revision: a hub revision to pin.
        box_threshold: minimum box score (the sigmoid of its best query's logit).
        query: ``'box'`` or ``'crop'`` (module docstring).
        merge: ``'max'`` or ``'mean'`` over a class's examples (module docstring).
        nms_iou / agnostic_nms_iou: per-class / class-agnostic NMS (``None`` = off).
        max_detections: boxes kept per image, best first.
        image_batch_size: images run together.
        dtype: the weights' dtype.
    """

    what = "transformers OWL image-guided detector"

    def __init__(self, *, model: str = "google/owlv2-base-patch16-ensemble", revision: Optional[str] = None,
                 box_threshold: float = 0.5, query: str = "box", merge: str = "max", nms_iou: Optional[float] = 0.3,
                 agnostic_nms_iou: Optional[float] = None, max_detections: int = 100, image_batch_size: int = 4,
                 dtype: str = "float32") -> None:
        check_model(model)
        check_unit("box_threshold", box_threshold)
        check_unit("nms_iou", nms_iou, optional=True)
        check_unit("agnostic_nms_iou", agnostic_nms_iou, optional=True)
        check_positive("max_detections", max_detections)
        check_positive("image_batch_size", image_batch_size)
        if query not in QUERIES:
            raise ValueError(f"query must be one of {', '.join(QUERIES)} (got {query!r})")
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {', '.join(MERGES)} (got {merge!r})")
        self.model, self.revision, self.box_threshold = model, revision, float(box_threshold)
        self.query, self.merge = query, merge
        self.nms_iou, self.agnostic_nms_iou, self.max_detections = nms_iou, agnostic_nms_iou, max_detections
        self.image_batch_size, self.dtype = image_batch_size, check_dtype(dtype)
        self.net = self.processor = None
        self.model_type: Optional[str] = None
        self.device: Optional[str] = None
        self._queries = PerExampleSet(self._make_queries)

    def setup(self, device: str = "cpu") -> None:
        if self.net is not None and self.device == device:
            return
        loaded = load(self.model, auto_class="AutoModelForZeroShotObjectDetection", types=MODEL_TYPES, device=device,
                      dtype=self.dtype, revision=self.revision, description=self.what)
        self.net, self.processor, self.model_type, self.device = loaded.model, loaded.processor, loaded.model_type, device
        self._queries.clear()

    def _require(self):
        if self.net is None:
            raise ValueError(f"{type(self).__name__}.setup(device) must be called first")
        return self.net

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """``pixel_values [3, S, S]`` of one image (the OWL image processor)."""
        self._require()
        image_size(image)
        return self.processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def feature_map(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(feature map [B, h, w, D], patch features [B, h * w, D])`` of processed images."""
        net = self._require()
        dtype = next(net.parameters()).dtype
        fmap = net.image_embedder(pixel_values=pixel_values.to(device=self.device, dtype=dtype))[0]
        b, h, w, d = fmap.shape
        return fmap, fmap.reshape(b, h * w, d)

    def box_query(self, example: Example) -> torch.Tensor:
        """The query embedding ``[D]`` of an example's box on its whole reference image (module docstring)."""
        from torchvision.ops import box_iou, generalized_box_iou
        from transformers.image_transforms import center_to_corners_format

        net = self._require()
        fmap, feats = self.feature_map(self.prepare(example.image)[None])
        _, class_embeds = net.class_predictor(feats)
        boxes = center_to_corners_format(net.box_predictor(feats, fmap))[0].float()
        h, w = example.image.shape[:2]
        frame = [max(h, w)] * 2 if self.model_type == "owlv2" else [w, h]  # OWLv2 pads to a square, OWL-ViT resizes
        target = torch.tensor(example.box, dtype=torch.float32).reshape(1, 4) / torch.tensor(frame * 2)
        ious = box_iou(target.to(boxes.device), boxes)[0]
        if torch.all(ious == 0):
            ious = generalized_box_iou(target.to(boxes.device), boxes)[0]
        candidates = torch.nonzero(ious >= ious.max() * 0.8).reshape(-1)
        embeds = class_embeds[0]
        similarity = embeds[candidates] @ embeds.mean(0)
        return embeds[candidates[int(torch.argmin(similarity))]]

    def crop_query(self, example: Example) -> torch.Tensor:
        """The query embedding ``[D]`` of an example's crop as the query image (``image_guided_detection``'s way)."""
        net = self._require()
        fmap, feats = self.feature_map(self.prepare(np.ascontiguousarray(example.crop()))[None])
        query, _, _ = net.embed_image_query(feats, fmap)
        return query.reshape(-1, query.shape[-1])[0]

    def _make_queries(self, examples: ExampleSet) -> Queries:
        embed = self.box_query if self.query == "box" else self.crop_query
        rows, classes = [], []
        with torch.no_grad():
            for k, name in enumerate(examples.classes):
                mine = torch.stack([embed(e) for e in examples.of_class(name)])
                if self.merge == "mean":
                    mine = torch.nn.functional.normalize(mine.float(), dim=-1).mean(0, keepdim=True).to(mine.dtype)
                rows.append(mine)
                classes += [k] * len(mine)
                negative = examples.of_class(name, positive=False)
                if negative:
                    rows.append(torch.stack([embed(e) for e in negative]))
                    classes += [-1 - k] * len(negative)
        return Queries(embeds=torch.cat(rows), classes=tuple(classes), names=tuple(examples.classes))

    def prepare_examples(self, examples: ExampleSet) -> list[str]:
        q = self._queries.get(examples)
        negatives = sum(c < 0 for c in q.classes)
        return [f"{type(self).__name__}: {len(q.names)} example classes, {len(q.classes) - negatives} queries"
                f"{f' + {negatives} negative' if negatives else ''} ({self.query} queries, {self.merge} over a class's "
                "examples)"]

    def detect_examples(self, images: Sequence[np.ndarray], examples: ExampleSet,
                        prepared: Optional[Sequence[torch.Tensor]] = None) -> list[ExampleMatches]:
        net = self._require()
        if prepared is not None and len(prepared) != len(images):
            raise ValueError("one prepared input per image is required")
        q = self._queries.get(examples)
        out = []
        for start in range(0, len(images), self.image_batch_size):
            idx = range(start, min(start + self.image_batch_size, len(images)))
            pixels = torch.stack([prepared[i] if prepared is not None else self.prepare(images[i]) for i in idx])
            with torch.no_grad():
                fmap, feats = self.feature_map(pixels)
                queries = q.embeds.to(feats.dtype)[None].expand(len(idx), -1, -1)
                logits, _ = net.class_predictor(feats, queries)
                boxes = net.box_predictor(feats, fmap)
            outputs = _Outputs(logits=logits.float().cpu(), pred_boxes=boxes.float().cpu())
            results = self.processor.image_processor.post_process_object_detection(
                outputs, threshold=self.box_threshold, target_sizes=[image_size(images[i]) for i in idx])
            out += [ExampleMatches(self._detections(r, q)) for r in results]
        return out

    def _detections(self, result: dict, q: Queries) -> Detections:
        cls = np.asarray([q.classes[j] for j in result["labels"].tolist()], dtype=np.int64)
        keep = np.flatnonzero(cls >= 0)  # a box whose best query is a negative example is not one
        dets = Detections(boxes=result["boxes"].numpy()[keep], scores=result["scores"].numpy()[keep],
                          labels=tuple(q.names[c] for c in cls[keep]))
        return merge_detections([dets], nms_iou=self.nms_iou, agnostic_nms_iou=self.agnostic_nms_iou,
                                max_detections=self.max_detections)


@dataclass
class _Outputs:
    """What transformers' ``post_process_object_detection`` reads of a model output."""

    logits: torch.Tensor
    pred_boxes: torch.Tensor
