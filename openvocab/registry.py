"""Every openvocab registry, in one place, under the explicit scope ``openvocab``.

Components from any package (``tagging``, ``grounding`` or a researcher's own) register
into these registries; configs load such packages with ``custom_imports`` and build
components by ``type`` name. ``openvocab`` itself never imports those packages.
"""
from __future__ import annotations

from mmengine import registry as _mm
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

SCOPE = "openvocab"

#: Image -> :class:`openvocab.structures.Tags` (e.g. RAM++).
TAGGERS = Registry("tagger", scope=SCOPE)
#: Tags -> detector prompts with per-tag character spans.
PROMPT_BUILDERS = Registry("prompt builder", scope=SCOPE, locations=["openvocab.prompt"])
#: Decides which tags can be boxed (objects) and which stay image-level only.
BOXABLE_FILTERS = Registry("boxable filter", scope=SCOPE, locations=["openvocab.prompt"])
#: Image + prompt -> :class:`openvocab.structures.Detections` (e.g. Grounding DINO).
DETECTORS = Registry("detector", scope=SCOPE)
#: Image + boxes -> :class:`openvocab.structures.Regions` (e.g. TAP, SAM).
MASK_HEADS = Registry("mask head", scope=SCOPE)
#: Image + tag names -> boxes with masks (:class:`openvocab.structures.Instances`; e.g. SAM 3, CLIPSeg).
SEGMENTERS = Registry("segmenter", scope=SCOPE)
#: Image (+ its tags) -> a caption (e.g. Tag2Text, Florence-2).
CAPTIONERS = Registry("captioner", scope=SCOPE)
#: :class:`openvocab.structures.ImageResult` -> files (COCO, JSONL, YOLO, LabelMe, overlays).
WRITERS = Registry("writer", scope=SCOPE, locations=["openvocab.writers"])
#: Text encoders (CLIP text tower for tag descriptions / concept matrices).
TEXT_ENCODERS = Registry("text encoder", scope=SCOPE)
#: Backends that write visual descriptions of tags (local LM, HTTP endpoint).
DESCRIPTION_BACKENDS = Registry("description backend", scope=SCOPE)
#: Offline tools built from configs by the CLI (``describe-tags``, ``embed-tags``, ``parse-captions``...).
TOOLS = Registry("tool", scope=SCOPE)
#: Training: datasets, trainable models and metrics. Children of mmengine's registries, so an
#: mmengine ``Runner`` with ``default_scope='openvocab'`` builds them by name.
DATASETS = Registry("dataset", parent=MMENGINE_DATASETS, scope=SCOPE, locations=["openvocab.training.datasets"])
MODELS = Registry("model", parent=MMENGINE_MODELS, scope=SCOPE)
METRICS = Registry("metric", parent=MMENGINE_METRICS, scope=SCOPE)

#: The rest of a training run (optimizers, schedulers, hooks, loops...): children of mmengine's, so a Runner
#: with ``default_scope='openvocab'`` finds mmengine's own components through them (no scope warnings).
_TRAINING_CHILDREN = {
    name: Registry(getattr(_mm, name).name, parent=getattr(_mm, name), scope=SCOPE)
    for name in ("RUNNERS", "RUNNER_CONSTRUCTORS", "LOOPS", "HOOKS", "STRATEGIES", "DATA_SAMPLERS", "TRANSFORMS",
                 "MODEL_WRAPPERS", "WEIGHT_INITIALIZERS", "OPTIMIZERS", "OPTIM_WRAPPERS",
                 "OPTIM_WRAPPER_CONSTRUCTORS", "PARAM_SCHEDULERS", "EVALUATOR", "TASK_UTILS", "VISUALIZERS",
                 "VISBACKENDS", "LOG_PROCESSORS", "INFERENCERS", "FUNCTIONS")
}

ALL_REGISTRIES = {
    "taggers": TAGGERS,
    "prompt_builders": PROMPT_BUILDERS,
    "boxable_filters": BOXABLE_FILTERS,
    "detectors": DETECTORS,
    "mask_heads": MASK_HEADS,
    "segmenters": SEGMENTERS,
    "captioners": CAPTIONERS,
    "writers": WRITERS,
    "text_encoders": TEXT_ENCODERS,
    "description_backends": DESCRIPTION_BACKENDS,
    "tools": TOOLS,
    "datasets": DATASETS,
    "models": MODELS,
    "metrics": METRICS,
}
