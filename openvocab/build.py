"""A :class:`~openvocab.pipeline.Pipeline` from a config (:func:`build_pipeline`), and how to build the same one in
another process (:class:`PipelineSpec`: Ray actors)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .pipeline import MODEL_STAGES, Pipeline


@dataclass(frozen=True)
class PipelineSpec:
    """How a pipeline was built from a config, so another process (a Ray actor) builds the same one.

    Attributes:
        config: the config as plain dicts (with its ``custom_imports``, imported again by :meth:`build`).
        vocabulary / device / precision / no_tagger / without / caption_tags / examples: :func:`build_pipeline`'s
            arguments.
    """

    config: dict
    vocabulary: Any = None
    device: Optional[str] = None
    precision: Optional[str] = None
    no_tagger: bool = False
    without: tuple[str, ...] = ()
    caption_tags: Any = None
    examples: Any = None  # an openvocab.examples.ExampleSet (label by example)

    def build(self, *, device: Optional[str] = None) -> Pipeline:
        import importlib

        imports = (self.config.get("custom_imports") or {}).get("imports", [])
        for module in [imports] if isinstance(imports, str) else imports:
            importlib.import_module(module)
        return build_pipeline(self.config, vocabulary=self.vocabulary, device=device or self.device,
                              precision=self.precision, no_tagger=self.no_tagger, without=self.without,
                              caption_tags=self.caption_tags, examples=self.examples)


def build_pipeline(cfg, *, vocabulary: Sequence[str] | str | None = None, device: str | None = None,
                   precision: str | None = None, no_tagger: bool = False, without: Sequence[str] = (),
                   caption_tags: Sequence[str] | str | None = None, examples: Any = None) -> Pipeline:
    """A :class:`Pipeline` from an mmengine ``Config`` (keys ``tagger``, ``boxable_filter``, ``detector``,
    ``mask_head``, ``segmenter``, ``stuff_segmenter``, ``captioner``, ``caption_tags``, ``caption_parser``,
    ``exemplar_detector``, ``vocabulary``, ``device``, ``precision``, ``clip_boxes``).

    ``without``: stages not to build at all (e.g. ``("mask_head",)`` for free-text detection);
    ``caption_tags``: tags that steer every caption, instead of the config's (``--caption-tags``); ``examples``: the
    labelled examples of label by example (an :class:`openvocab.examples.ExampleSet`).
    """
    get = cfg.get if hasattr(cfg, "get") else lambda k, d=None: getattr(cfg, k, d)
    vocab = vocabulary if vocabulary is not None else get("vocabulary", None)
    unknown = sorted(set(without) - {"boxable_filter", "caption_parser", *MODEL_STAGES})
    if unknown:
        raise ValueError(f"unknown stages in without: {unknown}")

    def stage(name: str):
        return None if name in without else _to_dict(get(name, None))

    pipe = Pipeline(
        tagger=None if (no_tagger or vocabulary is not None) else stage("tagger"),
        boxable_filter=stage("boxable_filter"), detector=stage("detector"), mask_head=stage("mask_head"),
        segmenter=stage("segmenter"), stuff_segmenter=stage("stuff_segmenter"), captioner=stage("captioner"),
        caption_tags=caption_tags if caption_tags is not None else _to_list(get("caption_tags", None)),
        caption_parser=stage("caption_parser"),
        exemplar_detector=stage("exemplar_detector"), examples=examples,
        prompt_builder=_to_dict(get("prompt_builder", None)),
        vocabulary=vocab, device=device or get("device", "cpu"),
        precision=precision or get("precision", "fp32"), clip_boxes=get("clip_boxes", True),
        cpu_turns=get("cpu_turns", True))
    pipe.build_spec = PipelineSpec(config=_plain(cfg), vocabulary=vocabulary, device=device, precision=precision,
                                   no_tagger=no_tagger, without=tuple(without), caption_tags=caption_tags,
                                   examples=examples)
    return pipe


def _plain(x):
    """Config / ConfigDict / dict -> plain dicts and lists (picklable without mmengine's lazy objects)."""
    if hasattr(x, "to_dict"):
        x = x.to_dict()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _to_list(x):
    return list(x) if isinstance(x, (list, tuple)) else x


def _to_dict(x):
    if x is None:
        return None
    return x.to_dict() if hasattr(x, "to_dict") else dict(x) if isinstance(x, dict) else x
