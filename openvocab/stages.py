"""The interfaces of the pipeline's stages.

A component registers into :mod:`openvocab.registry` and subclasses one of these. Constructors
are cheap and do no I/O; :meth:`Stage.setup` resolves weights (download + cache, see
:mod:`openvocab.hub`) and moves the model to a device. The pipeline calls ``setup`` for every
stage before the first image, so a missing checkpoint stops the job at once.

Dataflow: tagger -> boxable filter -> detector -> mask head, or a :class:`Segmenter` (boxes and masks
from tag names, e.g. SAM 3) in place of detector + mask head; a second segmenter may segment the tags
without boxes (stuff such as sky or grass, e.g. CLIPSeg). A plugin stage needs only its batch method
(``tag``, ``is_boxable``, ``detect``, ``set_image``/``predict``, ``segment``); :meth:`Stage.prepare`
(preprocessing in the job's loader workers) and :meth:`MaskHead.segment_batch` (batched image
encoding) are optional speed-ups.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from .structures import Detections, Instances, Regions, Tags

if TYPE_CHECKING:
    from .examples import ExampleMatches, ExampleSet
    from .hub import RemoteFile, RemoteRepo


class Stage(abc.ABC):
    """Base of every model stage."""

    def setup(self, device: str = "cpu") -> None:
        """Load weights (may download into the cache) and move to ``device``. Idempotent."""

    def required_files(self) -> list[str]:
        """Human-readable names of the checkpoints/data this stage will need (for ``--help``/errors)."""
        return []

    def remote_files(self) -> list["RemoteFile"]:
        """The downloadable files (:class:`openvocab.hub.RemoteFile`) that :meth:`setup` will resolve, for
        ``openvocab download`` and the missing-file message; local paths given by the user are not listed."""
        return []

    def remote_repos(self) -> list["RemoteRepo"]:
        """Whole Hugging Face model repositories (:class:`openvocab.hub.RemoteRepo`) that :meth:`setup` will
        resolve (e.g. a ``transformers`` model), for ``openvocab download``; local folders are not listed."""
        return []

    def prepare(self, image: np.ndarray) -> Any:
        """CPU-only preprocessing of one RGB uint8 ``[H, W, 3]`` image (resize, normalise...).

        The labeling job runs it in its loader workers, overlapped with the models, and hands the
        result back to the stage's batch method as ``prepared[i]``. It must not touch the model or
        any state that :meth:`setup` changes (it runs in other threads). The default returns
        ``None``: the stage preprocesses inside its batch method.
        """
        return None


def overrides_prepare(stage: Optional[Stage]) -> bool:
    """Whether ``stage`` has its own :meth:`Stage.prepare` (the job then calls it in loader workers)."""
    return stage is not None and getattr(type(stage), "prepare", Stage.prepare) is not Stage.prepare


class Tagger(Stage):
    """Images -> image-level tags."""

    @abc.abstractmethod
    def tag(self, images: Sequence[np.ndarray], prepared: Optional[Sequence[Any]] = None) -> list[Tags]:
        """Tag a batch of RGB uint8 ``[H, W, 3]`` images; one :class:`Tags` per image.

        ``prepared``: this stage's :meth:`prepare` of each image, when the caller ran it.
        """

    @property
    def class_names(self) -> Optional[list[str]]:
        """Every tag name this tagger can output, in a fixed order (the job numbers classes by it);
        ``None`` when not known in advance."""
        return None


class BoxableFilter(abc.ABC):
    """The stage between tagger and detector: whether a tag names something that can be boxed (an
    object) or not (a scene, an action, an attribute). Tags that are not boxable stay image tags."""

    @abc.abstractmethod
    def is_boxable(self, tag: str) -> bool:
        ...


class Detector(Stage):
    """Images + the tag names to look for -> boxes, each tied to one of those tags.

    A detector speaks in tags: prompt text, tokens and chunking a long vocabulary are its own
    business (``grounding.prompt.PromptChunker`` is the shared helper for text-prompted
    models). Boxes are xyxy in original-image pixels; the pipeline clips them to the image.
    """

    @abc.abstractmethod
    def detect(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
               prepared: Optional[Sequence[Any]] = None) -> list[Detections]:
        """Detect in a batch; ``tag_names[i]`` are the tags to look for in ``images[i]``.

        Every box's label is one of ``tag_names[i]``, spelled exactly as given.
        """

    def detect_text(self, images: Sequence[np.ndarray], texts: Sequence[str]) -> list[Detections | Instances]:
        """Free-text grounding (``openvocab detect "the man in a red shirt"``): phrases are spans. A detector that
        segments what it grounds (PSALM) returns :class:`Instances`, boxes with their masks."""
        raise NotImplementedError(f"{type(self).__name__} has no free-text mode")


class MaskHead(Stage):
    """Promptable segmentation.

    Two ways in: :meth:`segment_batch` for a job (a batch of images with their boxes; images
    without boxes never reach the image encoder), and Predictor style for interactive use
    (:meth:`set_image` once, :meth:`predict` many times).
    """

    @abc.abstractmethod
    def set_image(self, image: np.ndarray) -> None:
        """Encode one RGB uint8 ``[H, W, 3]`` image."""

    @abc.abstractmethod
    def predict(self, *, boxes: Optional[np.ndarray] = None,
                points: Optional[np.ndarray] = None,
                point_labels: Optional[np.ndarray] = None) -> Regions:
        """Masks for prompts on the current image.

        Args:
            boxes: ``float32 [N, 4]`` xyxy in original-image pixels.
            points: ``float32 [N, P, 2]`` xy in original-image pixels.
            point_labels: ``int [N, P]``, 1 foreground, 0 background.
        """

    def segment(self, image: np.ndarray, detections: Detections) -> Regions:
        """One :class:`Regions` aligned with ``detections`` (boxes as prompts)."""
        return self.segment_batch([image], [detections])[0]

    def segment_batch(self, images: Sequence[np.ndarray], detections: Sequence[Detections],
                      prepared: Optional[Sequence[Any]] = None) -> list[Regions]:
        """Regions for a batch: ``detections[i]``'s boxes prompt ``images[i]``.

        Images without detections get empty :class:`Regions` and are never encoded. This default
        encodes one image at a time; heads with a batched image encoder override it.
        """
        if len(images) != len(detections):
            raise ValueError(f"{len(images)} images but {len(detections)} detection sets")
        out = []
        for image, dets in zip(images, detections):
            if len(dets) == 0:
                out.append(Regions())
                continue
            self.set_image(image)
            out.append(self.predict(boxes=dets.boxes))
        return out


class Segmenter(Stage):
    """Images + tag names -> instances, each a box and a mask tied to one of those tags.

    The pipeline uses one in place of detector + mask head (``segmenter``, on the boxable tags: concept
    segmentation such as SAM 3), or beside them on the tags the boxable filter kept away from the detector
    (``stuff_segmenter``: text-prompted masks such as CLIPSeg; each mask's box is its bounding box). Boxes are
    xyxy in original-image pixels; the pipeline clips them like a detector's.
    """

    @abc.abstractmethod
    def segment(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
                prepared: Optional[Sequence[Any]] = None) -> list[Instances]:
        """Instances of ``tag_names[i]`` in ``images[i]``; every label is one of ``tag_names[i]`` as given."""


class ExemplarDetector(Stage):
    """Images + labelled examples -> boxes (and masks) of the examples' classes: label by example ("find all
    like this"; :mod:`openvocab.examples`).

    The pipeline runs it in its ``locate`` step beside the detector (or segmenter) and on every image, with the
    job's :class:`~openvocab.examples.ExampleSet`; its boxes join the detector's, are clipped like them and, when
    the pipeline has a mask head, segmented by it like them. Boxes are xyxy in original-image pixels.
    """

    #: whether :meth:`detect_examples` gives masks (without a mask head, the pipeline then keeps them)
    gives_masks: bool = False

    def prepare_examples(self, examples: "ExampleSet") -> list[str]:
        """Compute what ``examples`` need once (query embeddings, prototypes, thresholds) and return lines for
        the job's log (e.g. calibrated thresholds). The job calls it before the first image; otherwise the first
        :meth:`detect_examples` does. The default computes nothing."""
        return []

    @abc.abstractmethod
    def detect_examples(self, images: Sequence[np.ndarray], examples: "ExampleSet",
                        prepared: Optional[Sequence[Any]] = None) -> list["ExampleMatches"]:
        """Instances of ``examples.classes`` in each image; every label is one of them, spelled as given."""


@dataclass(frozen=True)
class MaskPrompts:
    """Checked :meth:`MaskHead.predict` arguments: row ``i`` of every array is prompt ``i``.

    Attributes:
        count: number of prompts ``N``.
        boxes: ``float32 [N, 4]`` xyxy original pixels, or ``None``.
        points: ``float32 [N, P, 2]`` xy original pixels, or ``None``.
        point_labels: ``int64 [N, P]`` (1 foreground, 0 background, -1 ignore), with ``points``.
    """

    count: int
    boxes: Optional[np.ndarray] = None
    points: Optional[np.ndarray] = None
    point_labels: Optional[np.ndarray] = None


def check_prompts(boxes=None, points=None, point_labels=None) -> MaskPrompts:
    """Validate the prompts of :meth:`MaskHead.predict` (shapes, finite values, labels); ``ValueError`` else."""
    n = None
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must be [N, 4] xyxy, got {boxes.shape}")
        if not np.isfinite(boxes).all():
            raise ValueError("boxes must be finite")
        n = len(boxes)
    labels = None
    if points is not None:
        points = np.asarray(points, dtype=np.float32)
        if points.ndim != 3 or points.shape[2] != 2:
            raise ValueError(f"points must be [N, P, 2], got {points.shape}")
        if not np.isfinite(points).all():
            raise ValueError("points must be finite")
        if point_labels is None:
            raise ValueError("points need point_labels [N, P] (1 fg, 0 bg, -1 ignore)")
        labels = np.asarray(point_labels)
        if labels.shape != points.shape[:2]:
            raise ValueError(f"point_labels {labels.shape} do not match points {points.shape}")
        if not np.isin(labels, (-1, 0, 1)).all():
            raise ValueError("point_labels must be 1 (foreground), 0 (background) or -1 (ignore)")
        labels = labels.astype(np.int64)
        if n is not None and len(points) != n:
            raise ValueError(f"{len(points)} point prompts for {n} boxes")
        n = len(points)
    elif point_labels is not None:
        raise ValueError("point_labels given without points")
    if n is None:
        raise ValueError("predict needs boxes and/or points")
    return MaskPrompts(count=n, boxes=boxes, points=points, point_labels=labels)


class Captioner(Stage):
    """Images (+ the tags found in them) -> one caption per image (e.g. Tag2Text, Florence-2).

    A captioner that is guided by tags (Tag2Text) uses ``tags[i]`` as the tags of ``images[i]`` when given
    (the pipeline's tagger's tags, or a user's ``--caption-tags``), else its own; one that is not ignores them.
    """

    @abc.abstractmethod
    def caption(self, images: Sequence[np.ndarray], tags: Optional[Sequence[Sequence[str]]] = None,
                prepared: Optional[Sequence[Any]] = None) -> list[str]:
        """One caption per RGB uint8 ``[H, W, 3]`` image of the batch."""


class TagDescriber(abc.ABC):
    """Writes visual descriptions of tags (RAM++ recipe); the ``describe-tags`` command uses it."""

    @abc.abstractmethod
    def describe(self, tags: Sequence[str]) -> dict[str, list[str]]:
        """``{tag: [descriptions]}``; the first description is ``"a photo of a {tag}."``."""


class DescriptionEmbedder(abc.ABC):
    """Embeds tag descriptions into a file the tagger loads as open-set tags (``embed-tags``)."""

    @abc.abstractmethod
    def embed_to_file(self, descriptions: dict[str, list[str]], out_path: str) -> None:
        ...


class CaptionParser(abc.ABC):
    """Captions -> tags of a tag list (``parse-captions``)."""

    @abc.abstractmethod
    def parse(self, captions: Sequence[str]) -> list[list[str]]:
        """One list of tags per caption."""
