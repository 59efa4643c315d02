"""Every openvocab registry, in one place, under the explicit scope ``openvocab``.

Components from any package (``tagging``, ``grounding`` or a researcher's own) register
into these registries; configs load such packages with ``custom_imports`` and build
components by ``type`` name. ``openvocab`` itself never imports those packages.

A ``type`` names a registered component and nothing else (:class:`Registry`): mmengine's own registries
import and call whatever a dotted name points to (``type='os.system'``), and a config value may come from a
user's ``--cfg-options`` or a web form.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Optional

from mmengine import registry as _mm
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry as _MMRegistry

SCOPE = "openvocab"


class UnknownTypeError(KeyError, ValueError):
    """A ``type`` that names no registered component (one line: the name, the registry, the closest names)."""

    def __str__(self) -> str:  # KeyError would quote its message
        return str(self.args[0]) if self.args else ""


class Registry(_MMRegistry):
    """mmengine's ``Registry`` that resolves a name only to a component registered in it or its parents.

    mmengine's ``get`` falls back to importing the module a dotted name points to and returning any object
    there, and imports ``<scope>.registry`` for a name with another scope; here a name (plain, or with the scope
    ``openvocab``) is looked up in the registered components and nowhere else, and ``_scope_`` cannot switch to
    another registry tree.
    """

    def get(self, key: str) -> Optional[Any]:
        if not isinstance(key, str):
            raise TypeError(f"a component type must be a registered name (str), got {type(key).__name__}")
        scope, name = self.split_scope_key(key)
        if scope not in (None, self._scope):
            return None
        self.import_from_location()
        reg: Optional[_MMRegistry] = self
        while reg is not None:
            if name in reg._module_dict:
                return reg._module_dict[name]
            reg = reg.parent if scope is None else None
        return None

    def names(self) -> list[str]:
        """Every name this registry resolves (its own components and its parents')."""
        self.import_from_location()
        out, reg = set(), self
        while reg is not None:
            out |= set(reg._module_dict)
            reg = reg.parent
        return sorted(out)

    def check_type(self, type_name: Any) -> None:
        """:class:`UnknownTypeError` unless ``type_name`` resolves to a registered component (or is a class or
        function given directly by Python code)."""
        if not isinstance(type_name, str):
            if callable(type_name):
                return
            raise UnknownTypeError(f"a {self.name} 'type' must be a registered name, got {type_name!r}")
        if self.get(type_name) is None:
            close = difflib.get_close_matches(type_name, self.names(), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; registered: {', '.join(self.names()) or 'none'}"
            raise UnknownTypeError(f"{type_name!r} is not a registered {self.name} (a plugin's package must be in "
                                   f"the config's custom_imports){hint}")

    def build(self, cfg: Any, *args, **kwargs) -> Any:
        if isinstance(cfg, dict):
            scope = cfg.get("_scope_")
            if scope not in (None, self._scope):
                raise UnknownTypeError(f"_scope_={scope!r}: components are built from the {self._scope!r} registries only")
            if "type" in cfg:
                self.check_type(cfg["type"])
        return super().build(cfg, *args, **kwargs)


def accepted_keywords(component: Any) -> Optional[set[str]]:
    """The keyword arguments a registered class (its ``__init__``) or function takes; ``None``: any (``**kwargs``)."""
    target = component.__init__ if inspect.isclass(component) else component
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}

#: Image -> :class:`openvocab.structures.Tags` (e.g. RAM++).
TAGGERS = Registry("tagger", scope=SCOPE)
#: Tag names -> detector prompts with per-tag character spans (``grounding.prompt``: text-prompted detectors).
PROMPT_BUILDERS = Registry("prompt builder", scope=SCOPE)
#: Decides which tags can be boxed (objects) and which stay image-level only.
BOXABLE_FILTERS = Registry("boxable filter", scope=SCOPE, locations=["openvocab.boxable"])
#: Image + prompt -> :class:`openvocab.structures.Detections` (e.g. Grounding DINO).
DETECTORS = Registry("detector", scope=SCOPE)
#: Image + boxes -> :class:`openvocab.structures.Regions` (e.g. TAP, SAM).
MASK_HEADS = Registry("mask head", scope=SCOPE)
#: Image + tag names -> boxes with masks (:class:`openvocab.structures.Instances`; e.g. SAM 3, CLIPSeg).
SEGMENTERS = Registry("segmenter", scope=SCOPE)
#: Video frames + the pipeline's keyframe results -> object tracks (:mod:`openvocab.video.tracking`: ByteTrack here;
#: SAM 2 / SAM 3 video models registered by ``grounding.video``).
TRACKERS = Registry("tracker", scope=SCOPE, locations=["openvocab.video.bytetrack"])
#: Images + labelled examples -> boxes (and masks) of the examples' classes (:class:`openvocab.stages.ExemplarDetector`).
EXEMPLAR_DETECTORS = Registry("exemplar detector", scope=SCOPE)
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

#: every openvocab registry by name (the training children of mmengine's registries included)
ALL_REGISTRIES = {
    "taggers": TAGGERS,
    "prompt_builders": PROMPT_BUILDERS,
    "boxable_filters": BOXABLE_FILTERS,
    "detectors": DETECTORS,
    "mask_heads": MASK_HEADS,
    "segmenters": SEGMENTERS,
    "trackers": TRACKERS,
    "exemplar_detectors": EXEMPLAR_DETECTORS,
    "captioners": CAPTIONERS,
    "writers": WRITERS,
    "text_encoders": TEXT_ENCODERS,
    "description_backends": DESCRIPTION_BACKENDS,
    "tools": TOOLS,
    "datasets": DATASETS,
    "models": MODELS,
    "metrics": METRICS,
}


def find_type(type_name: str) -> Optional[Any]:
    """The component ``type_name`` resolves to in any openvocab registry (``None``: none)."""
    for reg in (*ALL_REGISTRIES.values(), *_TRAINING_CHILDREN.values()):
        found = reg.get(type_name)
        if found is not None:
            return found
    return None


def registered_names() -> list[str]:
    """Every name some openvocab registry resolves."""
    return sorted({n for reg in (*ALL_REGISTRIES.values(), *_TRAINING_CHILDREN.values()) for n in reg.names()})
