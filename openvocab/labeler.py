"""The Python API: a pipeline config in one line, images in, typed results out.

    import openvocab

    labeler = openvocab.Labeler.from_config("full_pipeline", device="cuda")
    result = labeler.label("photo.jpg")              # or a numpy array, a PIL image, or a list of them
    result.tags, result.detections, result.regions   # typed (openvocab.structures)
    result.to_coco(); result.to_supervision(); result.show()
    labeler.label_folder("photos/", "runs/a", formats=("coco", "jsonl"), vis=True)   # = openvocab label
    for frame in labeler.label_video("clip.mp4", fps=5):  # tracked frames, one at a time
        frame.index, frame.track_ids, frame.result

:meth:`Labeler.label` runs the pipeline in this process, in batches of the config's ``batch_size``;
:meth:`Labeler.label_folder` is the job of ``openvocab label`` (:func:`openvocab.engine.run_job`: loader
threads, durable record, resume, every output format).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
from PIL import Image

from .config import DEFAULT_CONFIG, UserError, load_config
from .labeled import LabeledImage
from .build import build_pipeline
from .exemplars import check_examples, with_example_classes
from .pipeline import Pipeline, parse_vocabulary
from .structures import Detections, ImageInfo, ImageResult, Instances

#: what :meth:`Labeler.label` takes for one image
ImageInput = Union[str, os.PathLike, np.ndarray, Image.Image]
#: ``progress(fraction_done, what_now)``
ProgressCallback = Callable[[float, str], None]


class Labeler:
    """Labels images with a :class:`~openvocab.pipeline.Pipeline` (build it with :meth:`from_config`).

    Args:
        pipeline: the stages to run.
        batch_size: images per model batch in :meth:`label` and :meth:`label_folder`.
        writer_options: per output format, the writer's keyword arguments (a config's ``writers`` entry).
    """

    def __init__(self, pipeline: Pipeline, *, batch_size: int = 1,
                 writer_options: Optional[Mapping[str, dict]] = None, video: Optional[Any] = None) -> None:
        if not isinstance(pipeline, Pipeline):
            raise ValueError(f"pipeline must be an openvocab Pipeline, got {type(pipeline).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.pipeline = pipeline
        self.batch_size = int(batch_size)
        self.writer_options = dict(writer_options or {})
        #: how videos are labeled (an :class:`openvocab.video.job.VideoOptions`: the config's tracker and sampling)
        self.video = video
        self._trackers: dict = {}  # label_video's trackers, built (and their models loaded) once

    @classmethod
    def from_config(cls, config: str = DEFAULT_CONFIG, *, device: Optional[str] = None,
                    precision: Optional[str] = None, vocabulary: Sequence[str] | str | None = None,
                    options: Optional[Mapping[str, Any]] = None, without: Sequence[str] = (),
                    batch_size: Optional[int] = None,
                    checkpoint_dirs: Sequence[str | os.PathLike] = ()) -> "Labeler":
        """A labeler from a config name under ``configs/`` (``full_pipeline``, ``tiny_random``...) or a file.

        Args:
            device / precision: override the config's (``"cuda"``, ``"bf16"``...).
            vocabulary: user classes instead of the tagger (``"cat, dog"`` or a list), as ``--vocab``.
            options: config overrides, e.g. ``{"detector.box_threshold": 0.3}`` (as ``--cfg-options``).
            without: stages not to build (``("mask_head",)``: boxes only).
            batch_size: images per batch (default: the config's, else 1).
            checkpoint_dirs: folders holding downloaded checkpoints (as ``--checkpoint-dir``).

        Nothing is loaded yet: weights are read (or downloaded) by :meth:`setup` or the first image.
        """
        from .hub import set_checkpoint_dirs

        cfg = load_config(config, dict(options or {}))
        if checkpoint_dirs:
            set_checkpoint_dirs(list(checkpoint_dirs))
        try:
            pipe = build_pipeline(cfg, vocabulary=vocabulary, device=device, precision=precision, without=without)
        except (KeyError, ValueError, TypeError) as e:
            raise UserError(f"{config}: cannot build the pipeline ({e})") from None
        from .video.job import VideoOptions

        return cls(pipe, batch_size=batch_size or cfg.get("batch_size", 1), writer_options=cfg.get("writers", None),
                   video=VideoOptions.from_config(cfg))

    def setup(self) -> "Labeler":
        """Load every stage's weights onto the device now (else the first image does)."""
        self.pipeline.setup()
        return self

    def label(self, images: ImageInput | Sequence[ImageInput], *, vocabulary: Sequence[str] | str | None = None,
              progress: Optional[ProgressCallback] = None, examples: Any = None) -> LabeledImage | list[LabeledImage]:
        """Label one image (a path, an RGB ``uint8`` array, a PIL image) or a list of them.

        Args:
            vocabulary: this call's classes instead of the tagger's tags (``"cat, dog"`` or a list).
            progress: called as ``progress(fraction_done, what)`` before each step (loading, each stage).
            examples: label by example: this call's labelled examples (an :class:`openvocab.examples.ExampleSet`, or
                an examples file or folder as ``--examples`` takes) instead of the pipeline's; their classes join
                the class list after the vocabulary's. Needs a pipeline with an exemplar detector.

        Returns:
            one :class:`LabeledImage` for one image, a list for a list. A file that is not a readable image
            raises :class:`openvocab.images.ImageLoadError` naming it.
        """
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        report = progress or (lambda fraction, what: None)
        vocab = None if vocabulary is None else parse_vocabulary(vocabulary)
        examples = _examples(self.pipeline, examples)  # label by example
        loaded = [_to_image(x, i) for i, x in enumerate(items)]
        report(0.0, "loading the models")
        self.pipeline.setup()
        pipe, out = self.pipeline, []
        batches = [loaded[i:i + self.batch_size] for i in range(0, len(loaded), self.batch_size)]
        steps = len(pipe.steps)
        for b, batch in enumerate(batches):
            def step(k: int, name: str, b: int = b, n: int = len(batch)) -> None:
                what = pipe.STEP_TITLES.get(name, name)
                report((steps * b + k) / (steps * len(batches)),
                       f"{what} ({b * self.batch_size + n}/{len(loaded)})" if len(loaded) > 1 else what)

            out += pipe.run([a for a, _ in batch], [info for _, info in batch], vocabulary=vocab, on_step=step,
                            examples=examples)
        report(1.0, "done")
        classes = vocab if vocab is not None else pipe.class_names()
        if examples is not None and (classes is not None or pipe.tagger is None or vocab is not None):
            classes = with_example_classes(classes or [], examples)  # the examples' classes after the vocabulary
        classes = None if classes is None else tuple(classes)
        labeled = [LabeledImage(result=r, image=a, classes=classes) for r, (a, _) in zip(out, loaded)]
        return labeled[0] if single else labeled

    def detect_text(self, image: ImageInput, text: str, *, segment: bool = True) -> LabeledImage:
        """Free-text grounding (``openvocab detect``): boxes of the phrases of ``text`` in ``image`` (labels are
        the matched phrases), and their masks when the pipeline has a mask head and ``segment``."""
        pipe = self.pipeline
        if pipe.detector is None:
            raise UserError("this pipeline has no detector, so no free-text grounding")
        if not str(text).strip():
            raise ValueError("the text to ground is empty")
        array, info = _to_image(image, 0)
        found = pipe.ground([array], [str(text)], segment=segment)[0]
        dets, regions = (found.detections, found.regions) if isinstance(found, Instances) else (found, None)
        return LabeledImage(result=ImageResult(image=info, detections=dets, regions=regions), image=array)

    def segment_prompts(self, image: ImageInput, *, boxes: Optional[np.ndarray] = None,
                        points: Optional[np.ndarray] = None,
                        point_labels: Optional[np.ndarray] = None) -> LabeledImage:
        """Interactive segmentation with the pipeline's mask head (SAM, TAP, PSALM...), as SAM's predictor: one mask
        per prompt, a box (``boxes`` ``[N, 4]`` xyxy pixels) or a set of points (``points`` ``[N, P, 2]`` xy pixels
        with ``point_labels`` ``[N, P]``: 1 foreground, 0 background). Labels are ``"prompt 1"``, ``"prompt 2"``...;
        a box is the prompt's box, else its mask's extent; scores are the mask scores."""
        from .masks import decode_mask, mask_box

        pipe = self.pipeline
        if pipe.mask_head is None:
            raise UserError("this pipeline has no mask head to segment prompts with (choose a config with one)")
        array, info = _to_image(image, 0)
        pipe.setup()
        with pipe.model_call():
            pipe.mask_head.set_image(array)
            regions = pipe.mask_head.predict(boxes=boxes, points=points, point_labels=point_labels)
        n = len(regions)
        given = None if boxes is None else np.asarray(boxes, np.float32).reshape(-1, 4)
        box_rows = given if given is not None else np.asarray(
            [mask_box(decode_mask(m)) for m in regions.masks], np.float32).reshape(-1, 4)
        names = tuple(f"prompt {k + 1}" for k in range(n))
        dets = Detections(boxes=box_rows, scores=regions.mask_scores, labels=names)
        return LabeledImage(result=ImageResult(image=info, detections=dets, regions=regions), image=array)

    def label_video(self, path: str | os.PathLike, *, fps: Optional[float] = None, stride: Optional[int] = None,
                    tracker: Optional[Mapping[str, Any]] = None, vocabulary: Sequence[str] | str | None = None,
                    images: bool = False):
        """The frames of the video at ``path``, labeled and tracked, one at a time (flat memory): an iterator of
        :class:`openvocab.video.structures.TrackedFrame` (``images=True``: ``(frame, RGB array)`` pairs).

        Args:
            fps / stride: which frames (default: the config's ``video`` settings, else every frame).
            tracker: a tracker config instead of the config's (``dict(type="ByteTrackTracker")``...).
            vocabulary: this call's classes instead of the tagger's tags.

        A tracker's model is loaded once per labeler; label one video at a time (finish or drop an iterator
        before the next call).
        """
        import dataclasses

        from .video.api import label_video
        from .video.job import VideoOptions
        from .video.source import Sampling

        opts = self.video or VideoOptions()
        if fps is not None or stride is not None:
            opts = dataclasses.replace(opts, sampling=Sampling(fps=fps, stride=stride,
                                                               max_frames=opts.sampling.max_frames))
        if tracker is not None:
            opts = dataclasses.replace(opts, tracker=dict(tracker))
        vocab = None if vocabulary is None else parse_vocabulary(vocabulary)
        return label_video(self.pipeline, path, options=opts, batch_size=self.batch_size, vocabulary=vocab,
                           images=images, trackers=self._trackers)

    def label_folder(self, inputs: str | os.PathLike | Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                     formats: Sequence[str] = ("coco", "jsonl"), vis: bool = False, resume: bool = False,
                     overwrite: bool = False, progress: bool = True, **job_options):
        """``openvocab label INPUTS --out OUT_DIR``: :func:`openvocab.engine.run_job` with this labeler's pipeline,
        batch size and writer options; ``job_options``: its other arguments (``workers``, ``max_pixels``,
        ``engine``, ``ray``, ``video``; videos among the inputs are labeled with this labeler's video settings).
        Returns its :class:`~openvocab.engine.JobSummary`."""
        from .engine import run_job

        items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        return run_job(self.pipeline, [os.fspath(x) for x in items], out_dir, formats=formats, vis=vis,
                       batch_size=job_options.pop("batch_size", self.batch_size), resume=resume, overwrite=overwrite,
                       progress=progress, writer_options=job_options.pop("writer_options", self.writer_options),
                       video=job_options.pop("video", self.video), **job_options)


def _examples(pipe: Pipeline, examples: Any) -> Any:
    """A call's examples as an :class:`~openvocab.examples.ExampleSet` (read from a file or folder when given one),
    checked against the pipeline."""
    if examples is None:
        return None
    if isinstance(examples, (str, os.PathLike)):
        from .example_files import read_examples

        examples = read_examples(examples)
    check_examples(examples)
    if pipe.exemplar_detector is None:
        raise UserError("this pipeline has no exemplar detector, so no labelling by example: choose a config with "
                        "an exemplar_detector (e.g. tiny_examples)")
    return examples


def _to_image(x: ImageInput, index: int) -> tuple[np.ndarray, ImageInfo]:
    """One input -> (RGB uint8 pixels as displayed, its info)."""
    from .images import load_image, pil_to_rgb

    if isinstance(x, (str, os.PathLike)):
        return load_image(os.fspath(x))
    if isinstance(x, Image.Image):
        rgb = pil_to_rgb(x)
        name = getattr(x, "filename", "") or f"image_{index}.png"
    elif isinstance(x, np.ndarray):
        rgb = x
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"image {index}: an array must be RGB uint8 [H, W, 3] (or gray [H, W]), got "
                             f"{rgb.dtype} {tuple(x.shape)}")
        rgb = np.ascontiguousarray(rgb)
        name = f"image_{index}.png"
    else:
        raise ValueError(f"image {index}: expected a file path, a numpy array or a PIL image, got {type(x).__name__}")
    h, w = rgb.shape[:2]
    return rgb, ImageInfo(file=str(name), width=int(w), height=int(h))
