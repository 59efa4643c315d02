"""Typed data handed between the pipeline's stages.

Conventions (every stage, every writer):

* images are ``numpy.uint8`` arrays ``[H, W, 3]`` in RGB, already EXIF-rotated (displayed orientation);
* boxes are ``float32`` ``[N, 4]`` in ``xyxy`` order, absolute pixels of that original image;
* masks are COCO run-length encodings (``{"size": [H, W], "counts": str}``, pycocotools).

Lengths are validated on construction: a mismatch raises ``ValueError``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np


class TagSource(str, enum.Enum):
    """Where a tag came from."""

    CLOSED_SET = "closed-set"  #: one of the tagger's built-in tags (e.g. the 4585 RAM++ tags)
    OPEN_SET = "open-set"  #: a new tag described by an LLM, embedded at run time
    USER = "user"  #: a user vocabulary given instead of a tagger (``--vocab``)
    CAPTION = "caption"  #: found in the image's caption by a caption parser (the pipeline's ``caption_parser``)


@dataclass(frozen=True)
class Tag:
    """One image-level tag.

    Attributes:
        name: English tag name, e.g. ``"fire hydrant"``.
        score: confidence in ``[0, 1]`` (sigmoid probability for RAM++; 1.0 for user vocabulary).
        source: :class:`TagSource`.
        name_zh: optional Chinese name (RAM++ closed-set tags).
        boxable: whether the prompt builder sent this tag to the detector (``None`` = not decided).
    """

    name: str
    score: float
    source: TagSource = TagSource.CLOSED_SET
    name_zh: Optional[str] = None
    boxable: Optional[bool] = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Tag name must be a non-empty string, got {self.name!r}")
        if not np.isfinite(self.score):
            raise ValueError(f"Tag {self.name!r} has a non-finite score {self.score!r}")
        object.__setattr__(self, "source", TagSource(self.source))


@dataclass(frozen=True)
class Tags:
    """The tags of one image, highest score first."""

    tags: tuple[Tag, ...] = ()

    def __post_init__(self) -> None:
        tags = tuple(sorted(self.tags, key=lambda t: -t.score))
        object.__setattr__(self, "tags", tags)

    @classmethod
    def from_names(cls, names: Sequence[str], *, source: TagSource = TagSource.USER,
                   score: float = 1.0) -> "Tags":
        return cls(tuple(Tag(name=n, score=score, source=source) for n in names))

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tags]

    @property
    def scores(self) -> np.ndarray:
        return np.asarray([t.score for t in self.tags], dtype=np.float32)

    def __len__(self) -> int:
        return len(self.tags)

    def __iter__(self):
        return iter(self.tags)

    def __getitem__(self, i: int) -> Tag:
        return self.tags[i]


def _as_array(x, dtype, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=dtype)
    if arr.size == 0:
        arr = arr.reshape((0,) + shape_tail)
    if arr.ndim != 1 + len(shape_tail) or tuple(arr.shape[1:]) != shape_tail:
        raise ValueError(f"{what} must have shape [N, {', '.join(map(str, shape_tail))}]"
                         f" (got {tuple(arr.shape)})" if shape_tail else
                         f"{what} must have shape [N] (got {tuple(arr.shape)})")
    return arr


@dataclass(frozen=True)
class Detections:
    """Boxes of one image, each tied to one tag of the prompt.

    Attributes:
        boxes: ``float32 [N, 4]``, ``xyxy``, absolute pixels of the original (EXIF-rotated) image.
        scores: ``float32 [N]``, box confidence in ``[0, 1]``.
        labels: ``N`` tag names: the tag whose token span scored highest for the box.
        phrases: ``N`` phrases as the detector's text matched them (free-text mode: the span text;
            tag mode: equal to ``labels``).
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    labels: tuple[str, ...] = ()
    phrases: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        boxes = _as_array(self.boxes, np.float32, (4,), "Detections.boxes")
        scores = _as_array(self.scores, np.float32, (), "Detections.scores")
        labels = tuple(str(x) for x in self.labels)  # plain str (a stage may hand numpy strings)
        phrases = labels if self.phrases is None else tuple(str(x) for x in self.phrases)
        n = len(boxes)
        if not (len(scores) == len(labels) == len(phrases) == n):
            raise ValueError(f"Detections lengths differ: boxes {n}, scores {len(scores)}, "
                             f"labels {len(labels)}, phrases {len(phrases)}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "phrases", phrases)

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, index) -> "Detections":
        """Subset by a boolean mask or an index array (keeps order of ``index``)."""
        idx = np.arange(len(self))[np.asarray(index)] if len(self) else np.zeros(0, np.int64)
        return Detections(boxes=self.boxes[idx], scores=self.scores[idx],
                          labels=tuple(self.labels[i] for i in idx),
                          phrases=tuple(self.phrases[i] for i in idx))

    @staticmethod
    def concatenate(parts: Sequence["Detections"]) -> "Detections":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections()
        return Detections(boxes=np.concatenate([p.boxes for p in parts]),
                          scores=np.concatenate([p.scores for p in parts]),
                          labels=tuple(l for p in parts for l in p.labels),
                          phrases=tuple(ph for p in parts for ph in p.phrases))


@dataclass(frozen=True)
class Concept:
    """A region concept predicted by TAP: a vocabulary entry and its score."""

    name: str
    score: float


@dataclass(frozen=True)
class Regions:
    """Masks for one image, aligned 1:1 with the :class:`Detections` they were prompted by.

    Attributes:
        masks: ``N`` COCO RLEs (``{"size": [H, W], "counts": str}``) in original-image pixels.
        mask_scores: ``float32 [N]``, the mask head's predicted IoU.
        concepts: optional, per region the top-k :class:`Concept` (TAP only).
        captions: optional, per region a short caption (TAP only).
    """

    masks: tuple[dict, ...] = ()
    mask_scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    concepts: Optional[tuple[tuple[Concept, ...], ...]] = None
    captions: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        masks = tuple(self.masks)
        scores = _as_array(self.mask_scores, np.float32, (), "Regions.mask_scores")
        n = len(masks)
        for m in masks:
            if not isinstance(m, dict) or "size" not in m or "counts" not in m:
                raise ValueError("Regions.masks must be COCO RLE dicts with 'size' and 'counts'")
        if len(scores) != n:
            raise ValueError(f"Regions lengths differ: masks {n}, mask_scores {len(scores)}")
        concepts = None if self.concepts is None else tuple(tuple(c) for c in self.concepts)
        captions = None if self.captions is None else tuple(self.captions)
        if concepts is not None and len(concepts) != n:
            raise ValueError(f"Regions lengths differ: masks {n}, concepts {len(concepts)}")
        if captions is not None and len(captions) != n:
            raise ValueError(f"Regions lengths differ: masks {n}, captions {len(captions)}")
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "mask_scores", scores)
        object.__setattr__(self, "concepts", concepts)
        object.__setattr__(self, "captions", captions)

    def __len__(self) -> int:
        return len(self.masks)


@dataclass(frozen=True)
class Instances:
    """Boxes with their masks, aligned 1:1: what a :class:`~openvocab.stages.Segmenter` finds for one image.

    Attributes:
        detections: boxes (xyxy original pixels), scores and tag labels.
        regions: one mask per box (original pixels).
    """

    detections: Detections = field(default_factory=Detections)
    regions: Regions = field(default_factory=Regions)

    def __post_init__(self) -> None:
        if len(self.regions) != len(self.detections):
            raise ValueError(f"Instances lengths differ: detections {len(self.detections)}, "
                             f"regions {len(self.regions)}")

    def __len__(self) -> int:
        return len(self.detections)

    def select(self, index) -> "Instances":
        """Subset by an index array (keeps the order of ``index``)."""
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        r = self.regions
        return Instances(self.detections.select(idx), Regions(
            masks=tuple(r.masks[i] for i in idx), mask_scores=r.mask_scores[idx],
            concepts=None if r.concepts is None else tuple(r.concepts[i] for i in idx),
            captions=None if r.captions is None else tuple(r.captions[i] for i in idx)))

    @staticmethod
    def concatenate(parts: Sequence["Instances"]) -> "Instances":
        """One image's instances from several parts. When some parts' regions have concepts or captions (TAP)
        and others not (a stuff segmenter's), the others get none: ``()`` and ``""``."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Instances()
        regions = [p.regions for p in parts]
        concepts = captions = None
        if any(r.concepts is not None for r in regions):
            concepts = tuple(c for r in regions for c in (r.concepts or ((),) * len(r)))
        if any(r.captions is not None for r in regions):
            captions = tuple(c for r in regions for c in (r.captions or ("",) * len(r)))
        return Instances(Detections.concatenate([p.detections for p in parts]), Regions(
            masks=tuple(m for r in regions for m in r.masks),
            mask_scores=np.concatenate([r.mask_scores for r in regions]), concepts=concepts, captions=captions))


@dataclass(frozen=True)
class ImageInfo:
    """Where an image came from and its displayed size (after EXIF orientation)."""

    file: str
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"{self.file}: bad image size {self.width}x{self.height}")


@dataclass(frozen=True)
class ImageResult:
    """Everything the pipeline found in one image; what writers consume.

    ``tags`` holds every image-level tag (boxable or not); ``detections`` the boxes of the
    boxable ones; ``regions`` (if a mask head ran) is aligned 1:1 with ``detections``; ``caption`` the image's
    caption (if a captioner ran).
    """

    image: ImageInfo
    tags: Tags = field(default_factory=Tags)
    detections: Detections = field(default_factory=Detections)
    regions: Optional[Regions] = None
    caption: Optional[str] = None

    def __post_init__(self) -> None:
        if self.regions is not None and len(self.regions) != len(self.detections):
            raise ValueError(f"{self.image.file}: {len(self.regions)} regions for "
                             f"{len(self.detections)} detections")
