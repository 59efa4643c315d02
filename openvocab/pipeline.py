"""The labeling pipeline: tagger -> boxable filter -> detector -> mask head, on batches of images.

Every stage may be absent:

* no tagger: a user vocabulary (``vocabulary=[...]``) is used as the image's tags;
* no boxable filter: every tag is sent to the detector;
* no detector: tags only (``ImageResult.detections`` empty);
* no mask head: boxes only (``ImageResult.regions`` is ``None``).

A ``segmenter`` (boxes and masks from tag names, e.g. SAM 3) replaces detector + mask head. A
``stuff_segmenter`` (e.g. CLIPSeg) runs on the tags the boxable filter kept away from the detector
(sky, grass, water...): each of its masks becomes one more detection (box = the mask's bounding box)
with its region, after the detector's.

Tags the boxable filter rejects (scenes, actions, attributes) never reach the detector but stay
in ``ImageResult.tags`` (with ``boxable=False``). Detector and segmenter boxes are clipped to the
image here, in one place, whatever stage produced them. The mask head gets the whole batch with
its boxes; images without boxes never reach its image encoder.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from .batch import BatchState, PreparedImage
from .boxes import clip_detections, clip_instances
from .cpu import compute_turn, configure_torch_threads
from .dtypes import PRECISIONS  # noqa: F401  (re-exported: the one table lives in openvocab.dtypes)
from .pipeline_args import (build_stage, check_device, check_stages, describe_stage,  # noqa: F401
                            from_old_prompt_builder, parse_vocabulary, prepared_for, same_model)
# (check_device, parse_vocabulary: re-exported)
from .exemplars import (check_examples, check_exemplar_stage, keep_example_masks, locate_examples,  # label by example
                        with_example_classes)
from .registry import (BOXABLE_FILTERS, CAPTIONERS, DETECTORS, EXEMPLAR_DETECTORS, MASK_HEADS, SEGMENTERS, TAGGERS,
                       TOOLS)
from .stages import (BoxableFilter, Captioner, CaptionParser, Detector, ExemplarDetector, MaskHead, Segmenter, Tagger,
                     overrides_prepare)
from .structures import Detections, ImageInfo, ImageResult, Instances, Regions, Tag, Tags, TagSource



#: the model stages, in dataflow order (``boxable_filter`` and ``caption_parser`` are plain rules, not models)
MODEL_STAGES = ("tagger", "captioner", "detector", "mask_head", "segmenter", "stuff_segmenter", "exemplar_detector")


class Pipeline:
    """Runs the stages on batches of images.

    Args:
        tagger / boxable_filter / detector / mask_head: stage instances or registry config dicts.
        segmenter: boxes and masks of the boxable tags, in place of detector + mask head.
        stuff_segmenter: masks of the tags that are not boxable (needs a tagger; with a detector, a mask head).
        captioner: a caption per image (e.g. Tag2Text, Florence-2), guided by ``caption_tags`` when given, else by
            the tagger's tags (a captioner that takes tags; Tag2Text), else by its own. The same config as the
            tagger's (Tag2Text as both) shares the tagger's model.
        caption_tags: tags that steer every image's caption (``--caption-tags``).
        caption_parser: turns each caption into more tags (a ``CaptionParser`` such as ``SpacyCaptionParser``,
            or its config in ``TOOLS``): they join the image's tags (source ``caption``) before detection.
        exemplar_detector / examples: label by example (:mod:`openvocab.exemplars`): the stage that finds more of
            the labelled ``examples`` (an :class:`openvocab.examples.ExampleSet`) in the ``locate`` step.
        vocabulary: user classes used instead of a tagger (``--vocab``); with a tagger they are
            added to its tags.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast).
        clip_boxes: clip every detector's boxes to the image (boxes left without area are dropped).
        cpu_turns: on the CPU, stages' model calls take turns (:func:`openvocab.cpu.compute_turn`); ``False`` for
            stages whose calls wait on something other than the cores (a remote service).
        prompt_builder: deprecated (prompts are the detector's business): a ``TagPromptBuilder`` config's
            ``boxable_filter`` is taken as the boxable filter stage.
    """

    def __init__(self, *, tagger: Tagger | dict | None = None, boxable_filter: BoxableFilter | dict | None = None,
                 detector: Detector | dict | None = None, mask_head: MaskHead | dict | None = None,
                 segmenter: Segmenter | dict | None = None, stuff_segmenter: Segmenter | dict | None = None,
                 captioner: Captioner | dict | None = None, caption_tags: Sequence[str] | str | None = None,
                 caption_parser: CaptionParser | dict | None = None,
                 vocabulary: Sequence[str] | str | None = None, device: str = "cpu",
                 precision: str = "fp32", clip_boxes: bool = True, cpu_turns: bool = True, prompt_builder: Any = None,
                 exemplar_detector: ExemplarDetector | dict | None = None, examples: Any = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        check_device(device)
        if prompt_builder is not None:
            boxable_filter = from_old_prompt_builder(prompt_builder, boxable_filter)
        #: what each stage was built from (config dicts; ``{"type": class name}`` for a given instance): a job's
        #: fingerprint, so a resume with another pipeline is refused
        self.stage_configs = {name: describe_stage(cfg) for name, cfg in (
            ("tagger", tagger), ("boxable_filter", boxable_filter), ("detector", detector), ("mask_head", mask_head),
            ("segmenter", segmenter), ("stuff_segmenter", stuff_segmenter), ("captioner", captioner),
            ("caption_parser", caption_parser), ("exemplar_detector", exemplar_detector)) if cfg is not None}
        self.caption_tags = parse_vocabulary(caption_tags) if caption_tags else None
        if self.caption_tags:
            self.stage_configs["caption_tags"] = {"tags": list(self.caption_tags)}
        self.tagger: Optional[Tagger] = build_stage(TAGGERS, tagger)
        self.boxable_filter: Optional[BoxableFilter] = build_stage(BOXABLE_FILTERS, boxable_filter)
        self.detector: Optional[Detector] = build_stage(DETECTORS, detector)
        self.mask_head: Optional[MaskHead] = build_stage(MASK_HEADS, mask_head)
        self.segmenter: Optional[Segmenter] = build_stage(SEGMENTERS, segmenter)
        self.stuff_segmenter: Optional[Segmenter] = build_stage(SEGMENTERS, stuff_segmenter)
        self.captioner: Optional[Captioner] = (self.tagger if same_model(tagger, captioner, self.tagger)
                                               else build_stage(CAPTIONERS, captioner))
        self.caption_parser: Optional[CaptionParser] = build_stage(TOOLS, caption_parser)
        self.exemplar_detector: Optional[ExemplarDetector] = build_stage(EXEMPLAR_DETECTORS, exemplar_detector)
        self.vocabulary = parse_vocabulary(vocabulary) if vocabulary else None
        self.examples = check_examples(examples)
        check_stages(self)
        check_exemplar_stage(self)
        self.device = device
        self.precision = precision
        self.clip_boxes = bool(clip_boxes)
        self.cpu_turns = bool(cpu_turns)
        self._boxable: dict[str, bool] = {}
        self._ready = False
        #: set by :func:`openvocab.build.build_pipeline`: how to build this pipeline again elsewhere (Ray actors)
        self.build_spec: Optional[Any] = None  # an openvocab.build.PipelineSpec

    @property
    def stages(self) -> list:
        """The model stages, each once (a captioner that is the tagger counts once)."""
        out: list = []
        for stage in (getattr(self, name) for name in MODEL_STAGES):
            if stage is not None and not any(stage is s for s in out):
                out.append(stage)
        return out

    def required_files(self) -> list[str]:
        return [f for s in self.stages for f in s.required_files()]

    def remote_files(self) -> list:
        """Every downloadable file (:class:`openvocab.hub.RemoteFile`) the stages will resolve, once each."""
        files = {}
        for stage in self.stages:
            for spec in stage.remote_files():
                files.setdefault(spec.filename, spec)
        return list(files.values())

    def remote_repos(self) -> list:
        """Every Hugging Face model repository (:class:`openvocab.hub.RemoteRepo`) the stages will load, once each."""
        repos = {}
        for stage in self.stages:
            for spec in stage.remote_repos():
                repos.setdefault((spec.repo, spec.revision), spec)
        return list(repos.values())

    def setup(self) -> "Pipeline":
        """Resolve every stage's weights (may download) and move to the device, before any image."""
        from .hub import MissingFileError

        if not self._ready:
            if str(self.device).startswith("cpu"):
                configure_torch_threads()
            for stage in self.stages:
                try:
                    stage.setup(self.device)
                except MissingFileError as e:
                    raise MissingFileError(f"{e}{self._needs()}") from None
            self._ready = True
        return self

    def _needs(self) -> str:
        """Everything this pipeline will look for, each downloadable file with its URL (for a missing file)."""
        remote = self.remote_files()
        names = {f.filename for f in remote}
        local = [f for f in self.required_files() if f.split(" (", 1)[0] not in names]
        if not remote and len(local) <= 1:
            return ""
        lines = [f"    {f.filename}: {' or '.join(f.urls) or 'no download location known'}" for f in remote]
        lines += [f"    {f}" for f in local]
        return ("\n  This pipeline needs:\n" + "\n".join(lines)
                + "\n  On a connected machine, `openvocab download --config CONFIG --to DIR` fetches every file; "
                  "then run with --checkpoint-dir DIR.")

    def class_names(self) -> Optional[list[str]]:
        """The job's classes in a fixed order: the vocabulary's order (after the tagger's own tags, when
        both are used); ``None`` when the tagger cannot list its tags in advance."""
        vocab = with_example_classes(self.vocabulary or [], self.examples)  # example classes after the vocabulary
        if self.tagger is None:
            return vocab or None
        names = self.tagger.class_names
        if names is None:
            return None
        have = {n.lower() for n in names}
        return list(names) + [v for v in vocab if v.lower() not in have]

    def autocast(self):
        """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=dtype)

    _autocast = autocast  # older name

    @contextlib.contextmanager
    def model_call(self):
        """Around every stage's model call: no autograd, the precision's autocast, and on the CPU the process's
        compute turn (:func:`openvocab.cpu.compute_turn`: one model at a time, each with every core)."""
        turn = compute_turn(self.device) if self.cpu_turns else contextlib.nullcontext()
        with torch.inference_mode(), self.autocast(), turn:
            yield

    def prepare(self, image: np.ndarray) -> PreparedImage:
        """Each stage's CPU preprocessing of ``image`` (thread-safe; the job runs it in loader workers); a stage that
        serves twice (Tag2Text as tagger and captioner) prepares once."""
        done: list[tuple[Any, Any]] = []
        out = {}
        for name in MODEL_STAGES:
            stage = getattr(self, name)
            if not overrides_prepare(stage):
                continue
            hit = next((p for s, p in done if s is stage), None)
            out[name] = hit if hit is not None else stage.prepare(image)
            done.append((stage, out[name]))
        return PreparedImage(**out)

    def is_boxable(self, tag: str) -> bool:
        if self.boxable_filter is None:
            return True
        hit = self._boxable.get(tag)
        if hit is None:
            hit = self._boxable[tag] = bool(self.boxable_filter.is_boxable(tag))
        return hit

    def image_tags(self, images: Sequence[np.ndarray], prepared: Optional[Sequence[PreparedImage]] = None, *,
                   vocabulary: Sequence[str] | str | None = None) -> list[Tags]:
        """Tags per image (tagger and/or user vocabulary), each marked boxable or not.

        ``vocabulary``: this call's user classes, used instead of the tagger and the pipeline's vocabulary
        (what ``build_pipeline(vocabulary=...)`` does, without building another pipeline).
        """
        tagger, vocab = self.tagger, self.vocabulary
        if vocabulary is not None:
            tagger, vocab = None, parse_vocabulary(vocabulary)
        if tagger is not None:
            with self.model_call():
                tags = tagger.tag(images, **prepared_for(tagger, prepared, "tagger"))
        else:
            tags = [Tags() for _ in images]
        out = []
        for t in tags:
            items = list(t.tags)
            if vocab:
                have = {x.name.lower() for x in items}
                items += [Tags.from_names([v], source=TagSource.USER)[0]
                          for v in vocab if v.lower() not in have]
            items = [replace(x, boxable=True if x.source == TagSource.USER else self.is_boxable(x.name))
                     for x in items]
            out.append(Tags(tuple(items)))
        return out

    def detect(self, images: Sequence[np.ndarray], tags: Sequence[Tags],
               prepared: Optional[Sequence[PreparedImage]] = None) -> list[Detections]:
        """Boxes of each image's boxable tags, clipped to the image (``clip_boxes``)."""
        dets: list[Detections] = [Detections() for _ in images]
        names = [[t.name for t in tg if t.boxable] for tg in tags]
        todo = [i for i, n in enumerate(names) if n]
        if self.detector is None or not todo:
            return dets
        sub = None if prepared is None else [prepared[i] for i in todo]
        with self.model_call():
            found = self.detector.detect([images[i] for i in todo], [names[i] for i in todo],
                                         **prepared_for(self.detector, sub, "detector"))
        for i, d in zip(todo, found):
            dets[i] = clip_detections(d, *images[i].shape[:2]) if self.clip_boxes else d
        return dets

    def segment(self, images: Sequence[np.ndarray], detections: Sequence[Detections],
                prepared: Optional[Sequence[PreparedImage]] = None) -> list[Optional[Regions]]:
        """The mask head on the whole batch (``None`` per image without a mask head)."""
        if self.mask_head is None:
            return [None] * len(images)
        with self.model_call():
            return self.mask_head.segment_batch(images, detections, **prepared_for(self.mask_head, prepared, "mask_head"))

    def segment_tags(self, images: Sequence[np.ndarray], tags: Sequence[Tags],
                     prepared: Optional[Sequence[PreparedImage]] = None, *, stuff: bool = False) -> list[Instances]:
        """The segmenter on each image's boxable tags (``stuff=True``: the stuff segmenter on the others),
        boxes clipped to the image (``clip_boxes``)."""
        name = "stuff_segmenter" if stuff else "segmenter"
        stage: Optional[Segmenter] = getattr(self, name)
        out = [Instances() for _ in images]
        names = [[t.name for t in tg if bool(t.boxable) != stuff] for tg in tags]
        todo = [i for i, n in enumerate(names) if n]
        if stage is None or not todo:
            return out
        sub = None if prepared is None else [prepared[i] for i in todo]
        with self.model_call():
            found = stage.segment([images[i] for i in todo], [names[i] for i in todo],
                                  **prepared_for(stage, sub, name))
        for i, inst in zip(todo, found):
            out[i] = clip_instances(inst, *images[i].shape[:2]) if self.clip_boxes else inst
        return out

    def ground(self, images: Sequence[np.ndarray], texts: Sequence[str], *,
               segment: bool = True) -> list[Instances | Detections]:
        """Free-text grounding (``openvocab detect``, :meth:`openvocab.Labeler.detect_text`, the demo's grounding tab):
        per image, the boxes of its text's phrases (labels are the phrases), clipped (``clip_boxes``), with their
        masks as :class:`Instances`: the detector's own when it segments what it grounds (PSALM), else the mask
        head's when there is one and ``segment``; :class:`Detections` (boxes only) otherwise."""
        if self.detector is None:
            raise ValueError("this pipeline has no detector, so no free-text grounding")
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        self.setup()
        with self.model_call():
            found = self.detector.detect_text(list(images), [str(t) for t in texts])
        out: list[Instances | Detections] = []
        for image, f in zip(images, found):
            inst = f if isinstance(f, Instances) else None
            dets = f.detections if inst is not None else f
            dets = Detections(boxes=dets.boxes, scores=dets.scores, labels=dets.phrases, phrases=dets.phrases)
            if inst is not None:
                inst = Instances(dets, inst.regions)
                out.append(clip_instances(inst, *image.shape[:2]) if self.clip_boxes else inst)
                continue
            dets = clip_detections(dets, *image.shape[:2]) if self.clip_boxes else dets
            if segment and self.mask_head is not None:
                out.append(Instances(dets, self.segment([image], [dets])[0]))
            else:
                out.append(dets)
        return out

    #: the steps of a batch, in order: ``start`` -> ``tag`` -> ``locate`` -> ``finish``. The job engine runs each
    #: step on its own thread, so one batch is tagged while the one before is located and the one before that
    #: finished (mask head, full-size masks). Every face (CLI, engine, Ray, Python API, demo) runs batches
    #: through these steps and no other way.
    STEPS = ("tag", "caption", "locate", "finish")
    #: what each step does, in words (progress reports)
    STEP_TITLES = {"tag": "tagging", "caption": "captioning", "locate": "detecting", "finish": "segmenting"}

    @property
    def steps(self) -> tuple[str, ...]:
        """The :attr:`STEPS` this pipeline runs (``caption`` only with a captioner: the others always)."""
        return tuple(s for s in self.STEPS if s != "caption" or self.captioner is not None)

    def start(self, images: Sequence[np.ndarray], infos: Sequence[ImageInfo],
              prepared: Optional[Sequence[PreparedImage]] = None, *,
              vocabulary: Sequence[str] | str | None = None, examples: Any = None) -> BatchState:
        """A batch of RGB uint8 images (already EXIF-rotated), ready for the steps; ``vocabulary``: this batch's
        classes instead of the tagger's tags and the pipeline's vocabulary; ``examples``: its labelled examples
        instead of the pipeline's."""
        if len(images) != len(infos) or (prepared is not None and len(prepared) != len(images)):
            raise ValueError(f"{len(images)} images but {len(infos)} infos"
                             + ("" if prepared is None else f" and {len(prepared)} prepared inputs"))
        vocab = None if vocabulary is None else tuple(parse_vocabulary(vocabulary))
        self.setup()
        return BatchState(images=list(images), infos=list(infos), prepared=None if prepared is None else list(prepared),
                          vocabulary=vocab, examples=check_examples(examples))

    def tag(self, state: BatchState) -> BatchState:
        """Step 1: each image's tags (tagger and/or vocabulary), boxable marked."""
        return replace(state, tags=self.image_tags(state.images, state.prepared, vocabulary=state.vocabulary))

    def caption(self, state: BatchState) -> BatchState:
        """Step 2: each image's caption (without a captioner, none); the caption parser's tags join the image's."""
        if self.captioner is None:
            return state
        images = state.images
        if self.caption_tags:
            guide: Optional[list] = [list(self.caption_tags)] * len(images)
        else:  # the tagger's tags guide the caption; a user vocabulary names classes, not what is in the picture
            found = [[t.name for t in tags if t.source != TagSource.USER] for tags in state.tags]
            guide = found if self.tagger is not None and self.tagger is not self.captioner else None
        with self.model_call():
            captions = self.captioner.caption(images, guide, **prepared_for(self.captioner, state.prepared, "captioner"))
        if len(captions) != len(images):
            raise ValueError(f"{type(self.captioner).__name__} gave {len(captions)} captions for {len(images)} images")
        tags = state.tags
        if self.caption_parser is not None:
            tags = [self._with_caption_tags(t, found) for t, found in zip(tags, self.caption_parser.parse(captions))]
        return replace(state, captions=[str(c) for c in captions], tags=tags)

    def _with_caption_tags(self, tags: Tags, names: Sequence[str]) -> Tags:
        have = {t.name.lower() for t in tags}
        extra = [Tag(name=n, score=1.0, source=TagSource.CAPTION, boxable=self.is_boxable(n)) for n in
                 dict.fromkeys(names) if n.lower() not in have]
        return Tags(tuple(tags) + tuple(extra)) if extra else tags

    def locate(self, state: BatchState) -> BatchState:
        """Step 3: boxes of the boxable tags (detector), or boxes and masks (segmenter); then the exemplar stage's."""
        images, prepared = state.images, state.prepared
        if self.segmenter is not None:
            found = self.segment_tags(images, state.tags, prepared)
            state = replace(state, detections=[f.detections for f in found], regions=[f.regions for f in found])
        else:
            state = replace(state, detections=self.detect(images, state.tags, prepared))
        return locate_examples(self, state)  # label by example (openvocab.exemplars)

    def finish(self, state: BatchState) -> list[ImageResult]:
        """Step 4: the mask head on the located boxes, then the stuff segmenter; the results."""
        images, prepared, dets, regions = state.images, state.prepared, state.detections, state.regions
        if regions is None:
            regions = keep_example_masks(state, self.segment(images, dets, prepared))  # label by example
        if self.stuff_segmenter is not None:
            stuff = self.segment_tags(images, state.tags, prepared, stuff=True)
            both = [Instances.concatenate([Instances(d, r if r is not None else Regions()), s])
                    for d, r, s in zip(dets, regions, stuff)]
            dets, regions = [b.detections for b in both], [b.regions for b in both]
        captions = state.captions or [None] * len(state.infos)
        return [ImageResult(image=info, tags=t, detections=d, regions=r, caption=c)
                for info, t, d, r, c in zip(state.infos, state.tags, dets, regions, captions)]

    def run(self, images: Sequence[np.ndarray], infos: Sequence[ImageInfo],
            prepared: Optional[Sequence[PreparedImage]] = None, *, vocabulary: Sequence[str] | str | None = None,
            on_step: Optional[Callable[[int, str], None]] = None, examples: Any = None) -> list[ImageResult]:
        """Label a batch of RGB uint8 images (already EXIF-rotated): every step in turn, in this thread.
        ``on_step(k, step)`` is called before step ``k`` of :attr:`steps` (progress reports)."""
        state: Any = self.start(images, infos, prepared, vocabulary=vocabulary, examples=examples)
        for k, step in enumerate(self.steps):
            if on_step is not None:
                on_step(k, step)
            state = getattr(self, step)(state)
        return state

    __call__ = run
