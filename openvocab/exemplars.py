"""Label by example in the pipeline: what the pipeline's hooks call (:mod:`openvocab.pipeline` keeps only the calls).

* :func:`locate_examples`: the ``locate`` step's second half. The exemplar stage (``exemplar_detector``) runs on
  the batch with its examples (the batch's own, else the pipeline's); its boxes are clipped like the detector's and
  come after them. With a mask head, every box is segmented by it in ``finish`` (TAP's concepts and captions
  included), and a stage that makes its own masks keeps them (:func:`keep_example_masks`); with a segmenter, the
  exemplar stage's masks join the segmenter's; with neither and no detector, its own masks are kept; otherwise
  the results are boxes only.
* :func:`with_example_classes`: the example classes join the class list after the vocabulary's.
* :func:`check_exemplar_stage`: which stages go with an exemplar stage (``ValueError`` naming the problem).
* :func:`prepare_examples`: the exemplar stage's once-per-set work before the first image (its log lines).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional, Sequence

import numpy as np

from .batch import BatchState
from .boxes import clip_detections, clip_instances
from .examples import ExampleMatches, ExampleSet
from .stages import overrides_prepare
from .structures import Detections, Instances, Regions


def check_examples(examples: Any) -> Optional[ExampleSet]:
    """``examples`` if it is an :class:`ExampleSet` or ``None``; ``ValueError`` otherwise."""
    if examples is not None and not isinstance(examples, ExampleSet):
        raise ValueError("examples must be an openvocab.examples.ExampleSet (read a file with "
                         f"openvocab.example_files.read_examples), got {type(examples).__name__}")
    return examples


def check_exemplar_stage(pipe: Any) -> None:
    """Which stages go with an exemplar stage and examples (``ValueError`` naming the problem)."""
    stage = pipe.exemplar_detector
    if pipe.examples is not None and stage is None:
        raise ValueError("examples need an exemplar detector: choose a config with an exemplar_detector "
                         "(tiny_examples, examples_owlv2, examples_sam3, examples_seggpt, examples_clipseg, "
                         "examples_prototypes)")
    if stage is not None and pipe.segmenter is not None and not stage.gives_masks:
        raise ValueError(f"{type(stage).__name__} gives boxes only, and a segmenter's pipeline has no mask head to "
                         "segment them: use an exemplar detector that gives masks, or a detector and mask head")
    if stage is not None and pipe.stuff_segmenter is not None and pipe.mask_head is None and not stage.gives_masks:
        raise ValueError(f"{type(stage).__name__} gives boxes only, and a stuff segmenter adds masks, so every box "
                         "needs one: configure a mask head")


def with_example_classes(names: Sequence[str], examples: Optional[ExampleSet]) -> list[str]:
    """``names`` then each example class not among them (case-insensitive)."""
    out = list(names)
    have = {n.lower() for n in out}
    for c in examples.classes if examples is not None else ():
        if c.lower() not in have:
            out.append(c)
            have.add(c.lower())
    return out


def prepare_examples(pipe: Any, examples: Optional[ExampleSet] = None) -> list[str]:
    """The exemplar stage's :meth:`~openvocab.stages.ExemplarDetector.prepare_examples` on ``examples`` (default:
    the pipeline's), after setup; its lines for the job's log (``[]`` without an exemplar stage or examples)."""
    examples = examples if examples is not None else pipe.examples
    if pipe.exemplar_detector is None or examples is None:
        return []
    pipe.setup()
    with pipe.model_call():
        return list(pipe.exemplar_detector.prepare_examples(examples))


def locate_examples(pipe: Any, state: BatchState) -> BatchState:
    """The exemplar stage on a located batch: its boxes (and masks) after the detector's (module docstring)."""
    stage = pipe.exemplar_detector
    examples = state.examples if state.examples is not None else pipe.examples
    if stage is None or examples is None:
        return state
    images = state.images
    kwargs = {}
    if state.prepared is not None and overrides_prepare(stage):
        kwargs["prepared"] = [p.exemplar_detector for p in state.prepared]
    with pipe.model_call():
        found = stage.detect_examples(images, examples, **kwargs)
    if len(found) != len(images) or not all(isinstance(f, ExampleMatches) for f in found):
        raise ValueError(f"{type(stage).__name__}.detect_examples must return one ExampleMatches per image")
    classes = set(examples.classes)
    for f in found:
        stray = [label for label in f.detections.labels if label not in classes]
        if stray:
            raise ValueError(f"{type(stage).__name__} labelled a box {stray[0]!r}, which is no example class")
    detections = state.detections or [Detections() for _ in images]
    keep_masks = state.regions is not None or (pipe.mask_head is None and pipe.detector is None and stage.gives_masks)
    if not keep_masks:
        if pipe.mask_head is None or not stage.gives_masks:
            boxes = [_clipped(pipe, f.detections, image) for f, image in zip(found, images)]
            return replace(state, detections=[Detections.concatenate([d, b]) for d, b in zip(detections, boxes)])
        mine = [_instances(pipe, stage, f, image) for f, image in zip(found, images)]  # the mask head's boxes too
        return replace(state, detections=[Detections.concatenate([d, m.detections]) for d, m in zip(detections, mine)],
                       example_regions=[m.regions if len(m) else None for m in mine])
    regions = state.regions or [Regions() for _ in images]
    merged = [Instances.concatenate([Instances(d, r if r is not None else Regions()), _instances(pipe, stage, f, image)])
              for image, d, r, f in zip(images, detections, regions, found)]
    return replace(state, detections=[m.detections for m in merged], regions=[m.regions for m in merged])


def keep_example_masks(state: BatchState, regions: Sequence[Optional[Regions]]) -> list[Optional[Regions]]:
    """The mask head's ``regions`` of a batch with the exemplar stage's own masks (and mask scores) on its boxes,
    the last of each image's; the mask head's concepts and captions are kept for every box."""
    if state.example_regions is None:
        return list(regions)
    out = []
    for r, mine in zip(regions, state.example_regions):
        if r is None or mine is None or len(mine) == 0:
            out.append(r)
            continue
        n = len(r) - len(mine)
        if n < 0:
            raise ValueError(f"{len(r)} masks for an image whose exemplar stage found {len(mine)} boxes")
        out.append(Regions(masks=r.masks[:n] + mine.masks,
                           mask_scores=np.concatenate([r.mask_scores[:n], mine.mask_scores]),
                           concepts=r.concepts, captions=r.captions))
    return out


def _instances(pipe: Any, stage: Any, found: ExampleMatches, image: np.ndarray) -> Instances:
    """An exemplar stage's boxes with their masks, clipped (``ValueError`` for boxes without masks)."""
    if found.regions is None and len(found):
        raise ValueError(f"{type(stage).__name__} gave boxes without masks to a pipeline that keeps its masks")
    mine = Instances(found.detections, found.regions if found.regions is not None else Regions())
    return clip_instances(mine, *image.shape[:2]) if pipe.clip_boxes else mine


def _clipped(pipe: Any, dets: Detections, image: np.ndarray) -> Detections:
    return clip_detections(dets, *image.shape[:2]) if pipe.clip_boxes else dets
