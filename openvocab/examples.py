"""Label by example: classes defined by a few labelled examples instead of a name ("part #4711", "this defect").

An :class:`Example` is a box (xyxy, pixels; optionally a mask) of one class on a reference image; an
:class:`ExampleSet` is every example of a job, with its classes in a fixed order (they join the job's class list
after the vocabulary's). The pipeline's exemplar stage (:class:`openvocab.stages.ExemplarDetector`, registered in
``EXEMPLAR_DETECTORS``) finds more of each class in the images being labelled and returns one
:class:`ExampleMatches` per image. Example files (a COCO JSON or a folder of crops) are read and checked by
:mod:`openvocab.example_files`; the Python API and the demo build sets with :meth:`ExampleSet.from_boxes`.

A set is identified by its content (:meth:`ExampleSet.fingerprint`): every example's class, box, mask, sign and
reference pixels, so a resumed job with other examples is refused, whatever the files are called.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .structures import Detections, Regions


def image_digest(image: np.ndarray) -> str:
    """A short content digest of an RGB ``uint8 [H, W, 3]`` image (its size and pixels): how the exemplar stages
    recognise an example's reference image among the images being labelled (SAM 3's in-image exemplars)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(tuple(image.shape)).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


def _check_rgb(image: object, what: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
            or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what}: the reference image must be an RGB uint8 [H, W, 3] array, got "
                         f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    return image


@dataclass(frozen=True, eq=False)
class Example:
    """One labelled example.

    Attributes:
        class_name: the class it defines (any text: it is never read as a prompt unless a stage is told to).
        image: the reference image, RGB ``uint8 [H, W, 3]`` as displayed (EXIF applied).
        box: ``float32 [4]`` xyxy in the reference image's pixels, with an area, inside the image.
        mask: optional ``bool [H, W]`` (the reference image's size), not empty.
        positive: ``False`` for a negative example ("not this"; used by stages that take negatives: SAM 3,
            prototype matching, OWL).
        source: where it came from (``"examples.json: annotation 3 (id 17)"``), for messages.
        image_id: :func:`image_digest` of ``image`` (computed when not given).
    """

    class_name: str
    image: np.ndarray
    box: np.ndarray
    mask: Optional[np.ndarray] = None
    positive: bool = True
    source: str = ""
    image_id: str = ""

    def __post_init__(self) -> None:
        what = self.source or "example"
        if not isinstance(self.class_name, str) or not self.class_name.strip():
            raise ValueError(f"{what}: the class name must be non-empty text, got {self.class_name!r}")
        object.__setattr__(self, "class_name", " ".join(self.class_name.split()))
        image = _check_rgb(self.image, what)
        box = np.asarray(self.box, dtype=np.float32).reshape(-1)
        if box.shape != (4,) or not np.isfinite(box).all():
            raise ValueError(f"{what}: the box must be 4 finite numbers x1, y1, x2, y2, got {self.box!r}")
        h, w = image.shape[:2]
        if not (box[2] > box[0] and box[3] > box[1]):
            raise ValueError(f"{what}: empty box {_show(box)} (x2 must exceed x1 and y2 exceed y1)")
        if box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h:
            raise ValueError(f"{what}: box {_show(box)} lies outside the {w}x{h} image")
        object.__setattr__(self, "box", box)
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.shape != (h, w):
                raise ValueError(f"{what}: the mask is {mask.shape[1::-1] if mask.ndim == 2 else mask.shape}, "
                                 f"the image {w}x{h}")
            mask = mask.astype(bool)
            if not mask.any():
                raise ValueError(f"{what}: empty mask")
            object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "positive", bool(self.positive))
        if not self.image_id:
            object.__setattr__(self, "image_id", image_digest(image))

    def pixel_box(self) -> tuple[int, int, int, int]:
        """The box as whole pixels ``(x1, y1, x2, y2)`` (outwards), at least one pixel wide and high."""
        h, w = self.image.shape[:2]
        x1, y1 = int(np.floor(self.box[0])), int(np.floor(self.box[1]))
        x2, y2 = max(int(np.ceil(self.box[2])), x1 + 1), max(int(np.ceil(self.box[3])), y1 + 1)
        return max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)

    def crop(self) -> np.ndarray:
        """The box's pixels (``uint8 [h, w, 3]``)."""
        x1, y1, x2, y2 = self.pixel_box()
        return self.image[y1:y2, x1:x2]

    def region_mask(self) -> np.ndarray:
        """The example's mask, or its box filled (``bool [H, W]``)."""
        if self.mask is not None:
            return self.mask
        out = np.zeros(self.image.shape[:2], bool)
        x1, y1, x2, y2 = self.pixel_box()
        out[y1:y2, x1:x2] = True
        return out


def _show(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in box) + "]"


@dataclass(frozen=True, eq=False)
class ExampleSet:
    """Every example of a job, and its classes in order (each has at least one positive example).

    Attributes:
        examples: the examples.
        classes: the example classes, in the order they join the job's class list (``None``: the order of their
            first example).
        source: what they were read from (a file or folder name), for messages.
    """

    examples: tuple[Example, ...]
    classes: Optional[tuple[str, ...]] = None
    source: str = ""
    _key: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        examples = tuple(self.examples)
        if not all(isinstance(e, Example) for e in examples):
            raise ValueError("an ExampleSet holds Example objects")
        positive = list(dict.fromkeys(e.class_name for e in examples if e.positive))
        named = list(dict.fromkeys(e.class_name for e in examples))
        classes = named if self.classes is None else [" ".join(str(c).split()) for c in self.classes]
        lowered = [c.lower() for c in classes]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"{self.source or 'examples'}: a class is named twice: {classes}")
        missing = [c for c in classes if c not in positive]
        if missing:
            raise ValueError(f"{self.source or 'examples'}: class {missing[0]!r} has no positive example")
        stray = sorted({e.class_name for e in examples} - set(classes))
        if stray:
            raise ValueError(f"{self.source or 'examples'}: examples of class {stray[0]!r}, which is not a class "
                             "of the set")
        if not examples:
            raise ValueError(f"{self.source or 'examples'}: no examples")
        object.__setattr__(self, "examples", examples)
        object.__setattr__(self, "classes", tuple(classes))
        object.__setattr__(self, "_key", _content_key(examples, classes))

    @classmethod
    def from_boxes(cls, image: np.ndarray, boxes: Sequence[Sequence[float]], labels: Sequence[str], *,
                   positive: Optional[Sequence[bool]] = None, masks: Optional[Sequence[np.ndarray]] = None,
                   source: str = "boxes") -> "ExampleSet":
        """Examples drawn on one image: ``boxes[i]`` (xyxy pixels) of class ``labels[i]`` (``positive[i]``:
        ``False`` for "not this"; ``masks[i]``: an optional mask). ``ValueError`` naming the box for a bad one."""
        if len(boxes) != len(labels) or (positive is not None and len(positive) != len(boxes)) \
                or (masks is not None and len(masks) != len(boxes)):
            raise ValueError("one label (and sign, and mask) per box")
        digest = image_digest(_check_rgb(image, source))
        return cls(tuple(Example(class_name=labels[i], image=image, box=boxes[i],
                                 mask=None if masks is None else masks[i],
                                 positive=True if positive is None else positive[i],
                                 source=f"{source}: box {i + 1}", image_id=digest) for i in range(len(boxes))),
                   source=source)

    def __len__(self) -> int:
        return len(self.examples)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExampleSet) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __iter__(self):
        return iter(self.examples)

    @property
    def key(self) -> str:
        """The content digest (equal sets, equal keys): stages cache what they compute from a set under it."""
        return self._key

    def of_class(self, name: str, *, positive: Optional[bool] = True) -> list[Example]:
        """The examples of class ``name`` (``positive=None``: both signs)."""
        return [e for e in self.examples if e.class_name == name and (positive is None or e.positive == positive)]

    def in_image(self, image_id: str) -> list[Example]:
        """The examples whose reference image is the image with :func:`image_digest` ``image_id``."""
        return [e for e in self.examples if e.image_id == image_id]

    def fingerprint(self) -> dict:
        """What makes two sets the same for a job's record (JSON-safe): the content digest, the classes, counts."""
        return {"digest": self._key, "classes": list(self.classes), "examples": len(self.examples),
                "negatives": sum(not e.positive for e in self.examples), "source": self.source}


def _content_key(examples: Sequence[Example], classes: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps(list(classes)).encode())
    for e in examples:
        mask = "" if e.mask is None else hashlib.blake2b(np.packbits(e.mask).tobytes(), digest_size=16).hexdigest()
        h.update(json.dumps([e.class_name, e.image_id, [round(float(v), 3) for v in e.box], mask,
                             e.positive]).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class ExampleMatches:
    """What an exemplar stage found in one image: boxes labelled with example classes, and their masks when the
    stage makes masks (``regions`` aligned 1:1 with ``detections``; ``None``: boxes only).

    Boxes are xyxy in the image's pixels; the pipeline clips them like a detector's."""

    detections: Detections = field(default_factory=Detections)
    regions: Optional[Regions] = None

    def __post_init__(self) -> None:
        if self.regions is not None and len(self.regions) != len(self.detections):
            raise ValueError(f"ExampleMatches lengths differ: detections {len(self.detections)}, "
                             f"regions {len(self.regions)}")

    def __len__(self) -> int:
        return len(self.detections)
