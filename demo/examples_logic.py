"""What the demo's **Find all like this** tab does, without the page: boxes drawn on an image by two clicks (two
opposite corners), each with a label (and "not like this" for a negative one), become labelled examples
(:class:`openvocab.examples.ExampleSet`); the chosen config's exemplar stage then finds every similar instance in
the same image and in more uploaded images (a folder is several uploads), through the Python API
(``Labeler.label(images, examples=...)``). The results: overlays, a table of boxes, and one COCO JSON to download.

What a client sends is data only: click coordinates (numbers, checked against the image), labels (short text),
files only as uploads the page received (:func:`.logic.upload_path`). The drawn boxes live in the session's state
on the server; the page never sends a server path.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from openvocab.config import UserError, load_config
from openvocab.examples import ExampleSet
from openvocab.images import load_image
from openvocab.labeler import Labeler
from openvocab.writers.overlay import tag_color

from .logic import Settings, _fail, _named, region_rows

BOX_HEADERS = ["#", "label", "box x1,y1,x2,y2", "sign"]
#: the most boxes a session may draw, images one run may label, characters of a label
MAX_BOXES, MAX_IMAGES, MAX_LABEL_CHARS = 50, 64, 100
#: the stages left out for "find all like this": the examples' classes only, no tags or text classes
TEXT_STAGES = ("tagger", "detector", "segmenter", "stuff_segmenter")


@dataclasses.dataclass(frozen=True)
class Drawing:
    """One session's drawing: the image (a checked upload's path and its pixels), the boxes drawn on it
    (``(x1, y1, x2, y2, label, positive)``) and the first corner of the box being drawn."""

    file: Optional[str] = None
    image: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)
    boxes: tuple[tuple[float, float, float, float, str, bool], ...] = ()
    corner: Optional[tuple[float, float]] = None

    def rows(self) -> list[list]:
        return [[i + 1, label, ", ".join(f"{v:.0f}" for v in (x1, y1, x2, y2)), "like this" if positive else
                 "not like this"] for i, (x1, y1, x2, y2, label, positive) in enumerate(self.boxes)]

    def picture(self) -> Optional[Image.Image]:
        """The image with the boxes drawn (and the pending corner marked)."""
        if self.image is None:
            return None
        picture = Image.fromarray(self.image)
        draw = ImageDraw.Draw(picture)
        width = max(2, round(max(self.image.shape[:2]) / 300))
        for x1, y1, x2, y2, label, positive in self.boxes:
            color = tag_color(label) if positive else (128, 128, 128)
            draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=color, width=width)
            draw.text((x1 + width + 1, y1 + width), label if positive else f"not {label}", fill=color)
        if self.corner is not None:
            x, y = self.corner
            r = 3 * width
            draw.line([x - r, y, x + r, y], fill=(255, 0, 0), width=width)
            draw.line([x, y - r, x, y + r], fill=(255, 0, 0), width=width)
        return picture

    def examples(self) -> ExampleSet:
        """The drawn boxes as labelled examples (:class:`UserError` when there are none, or a class has only "not
        like this" boxes)."""
        if self.image is None or not self.boxes:
            raise UserError("draw at least one box first: click two opposite corners of a thing on the image.")
        try:
            return ExampleSet.from_boxes(self.image, [b[:4] for b in self.boxes], [b[4] for b in self.boxes],
                                         positive=[b[5] for b in self.boxes], source=Path(self.file).name)
        except ValueError as e:
            raise UserError(str(e)) from None


def open_image(path: str) -> Drawing:
    """A new drawing on the upload at ``path`` (a path :func:`.logic.upload_path` accepted)."""
    return Drawing(file=path, image=load_image(path)[0])


def click(drawing: Drawing, xy: object, label: object, negative: object) -> tuple[Drawing, str]:
    """``drawing`` after a click at ``xy`` (image pixels, as the page reports them): the first corner of a box, or
    the second, which adds the box with ``label``. Returns the new drawing and a status line."""
    if drawing.image is None:
        return drawing, "**Error:** upload an image or pick one of the examples first."
    if not isinstance(xy, (list, tuple)) or len(xy) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in xy):
        return drawing, "**Error:** a click is two numbers, x and y."
    h, w = drawing.image.shape[:2]
    x, y = min(max(float(xy[0]), 0.0), float(w)), min(max(float(xy[1]), 0.0), float(h))
    if drawing.corner is None:
        return dataclasses.replace(drawing, corner=(x, y)), "Now click the opposite corner of the box."
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS:
        return drawing, f"**Error:** type a label for the box (at most {MAX_LABEL_CHARS} characters)."
    if len(drawing.boxes) >= MAX_BOXES:
        return dataclasses.replace(drawing, corner=None), f"**Error:** at most {MAX_BOXES} boxes."
    (cx, cy) = drawing.corner
    x1, x2, y1, y2 = min(cx, x), max(cx, x), min(cy, y), max(cy, y)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return dataclasses.replace(drawing, corner=None), "**Error:** that box is too small; click two opposite corners."
    box = (x1, y1, x2, y2, " ".join(label.split()), not bool(negative))
    drawing = dataclasses.replace(drawing, boxes=drawing.boxes + (box,), corner=None)
    return drawing, f"{len(drawing.boxes)} box{'es' if len(drawing.boxes) > 1 else ''} drawn."


class ExampleLabelers:
    """Keeps the labeler for "find all like this" of the last settings: the config's exemplar stage (and mask head),
    without its text stages (:data:`TEXT_STAGES`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Optional[tuple] = None
        self._labeler: Optional[Labeler] = None

    def get(self, settings: Settings) -> Labeler:
        options = settings.options()
        key = (settings.config, settings.device, settings.precision, settings.without(), tuple(sorted(options.items())))
        with self._lock:
            if key != self._key:
                self._labeler = self._key = None  # free the old models first
                if not load_config(settings.config).get("exemplar_detector"):
                    raise UserError("this config has no exemplar detector: choose tiny_examples or one of the "
                                    "examples_* configs")
                without = tuple(dict.fromkeys(settings.without() + TEXT_STAGES))
                self._labeler = Labeler.from_config(settings.config, device=settings.device,
                                                    precision=settings.precision, options=options, without=without)
                self._key = key
            return self._labeler


@dataclasses.dataclass
class FindOutput:
    gallery: list = dataclasses.field(default_factory=list)  #: (overlay, caption) per image
    regions: list = dataclasses.field(default_factory=list)
    coco: Optional[Path] = None
    status: str = ""


def find_all(labelers: ExampleLabelers, drawing: Drawing, more: Sequence[str], settings: Settings,
             progress: Optional[Callable[[float, str], None]] = None, *, out_root: Optional[Path] = None) -> FindOutput:
    """Every instance like the drawn boxes in the drawn image and in ``more`` (paths :func:`.logic.upload_path`
    accepted); problems come back as ``status`` (never raised)."""
    try:
        examples = drawing.examples()
        files = [drawing.file, *more]
        if len(files) > MAX_IMAGES:
            raise UserError(f"at most {MAX_IMAGES} images at once.")
        labeler = labelers.get(settings)
        found = labeler.label(files, examples=examples, progress=progress)
        found = [_named(f, Path(file).name) for f, file in zip(found, files)]
        folder = Path(tempfile.mkdtemp(prefix="openvocab-demo-", dir=out_root))
        coco = folder / "find_all_coco.json"
        from openvocab.writers.coco import build_coco

        coco.write_text(json.dumps(build_coco([f.result for f in found], found[0].classes)), encoding="utf-8")
    except Exception as e:  # noqa: BLE001 - every failure becomes a message on the page
        return FindOutput(status=_fail(e))
    rows = []
    for f in found:
        rows += [[Path(f.info.file).name, *row[1:6]] for row in region_rows(f)]
    total = sum(len(f) for f in found)
    return FindOutput(gallery=[(f.render(), f"{Path(f.info.file).name}: {len(f)}") for f in found], regions=rows,
                      coco=coco, status=f"{total} box{'es' if total != 1 else ''} like the {len(examples)} drawn in "
                                        f"{len(found)} image{'s' if len(found) > 1 else ''}.")


FOUND_HEADERS = ["image", "label", "score", "box x1,y1,x2,y2", "mask area", "mask score"]
