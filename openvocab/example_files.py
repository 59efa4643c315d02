"""Reading example files (``openvocab label --examples FILE``) into a checked :class:`~openvocab.examples.ExampleSet`.

Two forms:

* **COCO JSON**: ``images`` (``id``, ``file_name`` relative to the JSON's folder, optional ``width``/``height``),
  ``categories`` (``id``, ``name``: the classes, in their order) and ``annotations`` (``image_id``,
  ``category_id``, ``bbox`` ``[x, y, w, h]`` in pixels and/or ``segmentation`` as polygons or RLE; optional
  ``"negative": true`` for a "not this" example). A box without ``bbox`` is its mask's extent. Categories without
  a positive example are not classes of the set.
* **a folder of crops**: ``DIR/<class>/*.png|jpg|...``; each crop is an example of its folder's class whose box is
  the whole crop.

Everything is read and checked before anything is labelled: a missing or unreadable image, a box without area or
outside its image, a mask of the wrong size, an unknown image or class id, a duplicate id or class name stops at
once with one line naming the file and the entry (:class:`ExamplesError`); nothing is ever labelled with a half-read
example set.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import UserError
from .examples import Example, ExampleSet, image_digest
from .images import ImageLoadError, load_image
from .inputs import is_image_file


class ExamplesError(UserError):
    """A bad example file: one line naming the file and the entry (exit status 2)."""


def read_examples(path: str | os.PathLike, *, max_pixels: Optional[int] = None) -> ExampleSet:
    """The examples of ``path``: a COCO JSON file or a folder of ``<class>/`` crop folders (module docstring)."""
    p = Path(path).expanduser()
    if p.is_dir():
        return _read_folder(p, max_pixels)
    if not p.exists():
        raise ExamplesError(f"{p}: no such examples file or folder")
    return _read_coco(p, max_pixels)


def _load(path: Path, where: str, max_pixels: Optional[int]) -> np.ndarray:
    try:
        return load_image(str(path), max_pixels=max_pixels)[0]
    except ImageLoadError as e:
        raise ExamplesError(f"{where}: {e.file}: {e.message}") from None


# --------------------------------------------------------------------------- folder of crops

def _read_folder(root: Path, max_pixels: Optional[int]) -> ExampleSet:
    examples, classes = [], []
    try:
        entries = sorted(e for e in root.iterdir() if not e.name.startswith("."))
    except OSError as e:
        raise ExamplesError(f"{root}: cannot list the examples folder ({e.strerror or e})") from None
    for entry in entries:
        if not entry.is_dir():
            raise ExamplesError(f"{root}: {entry.name}: put each crop in a folder named by its class "
                                f"({root.name}/<class>/{entry.name})")
        name = " ".join(entry.name.split())
        if name.lower() in (c.lower() for c in classes):
            raise ExamplesError(f"{root}: {entry.name}: class {name!r} has two folders")
        try:
            files = sorted(f for f in entry.iterdir() if not f.name.startswith("."))
        except OSError as e:
            raise ExamplesError(f"{root}: {entry.name}: cannot list ({e.strerror or e})") from None
        crops = []
        for f in files:
            where = f"{root}: {entry.name}/{f.name}"
            if f.is_dir() or not is_image_file(f.name):
                raise ExamplesError(f"{where}: not an image file (a class folder holds crops only: "
                                    ".png, .jpg ...)")
            crop = _load(f, f"{root}: {entry.name}/{f.name}", max_pixels)
            h, w = crop.shape[:2]
            crops.append(Example(class_name=name, image=crop, box=[0, 0, w, h], source=where))
        if not crops:
            raise ExamplesError(f"{root}: {entry.name}: no crops in the class folder")
        classes.append(name)
        examples += crops
    if not examples:
        raise ExamplesError(f"{root}: no class folders with crops ({root.name}/<class>/*.png)")
    return ExampleSet(tuple(examples), classes=tuple(classes), source=str(root))


# --------------------------------------------------------------------------- COCO JSON

def _read_coco(path: Path, max_pixels: Optional[int]) -> ExampleSet:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ExamplesError(f"{path}: cannot read ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ExamplesError(f"{path}: not a JSON file ({e}); examples are a COCO JSON file or a folder of "
                            "<class>/ crop folders") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                             for k in ("images", "annotations", "categories")):
        raise ExamplesError(f"{path}: not a COCO file: it needs the lists 'images', 'categories' and 'annotations'")
    categories = _categories(path, data["categories"])
    images = _images(path, data["images"])
    by_image: dict[Any, list[tuple[int, dict]]] = {}
    for i, ann in enumerate(data["annotations"]):
        where = _entry(path, "annotation", i, ann)
        if not isinstance(ann, dict):
            raise ExamplesError(f"{where}: not an object")
        if _id(ann.get("category_id")) not in categories:
            raise ExamplesError(f"{where}: unknown class id {ann.get('category_id')!r} (the categories' ids are "
                                f"{', '.join(map(str, categories))})")
        if _id(ann.get("image_id")) not in images:
            raise ExamplesError(f"{where}: unknown image id {ann.get('image_id')!r}")
        by_image.setdefault(_id(ann["image_id"]), []).append((i, ann))
    numbered: list[tuple[int, Example]] = []
    for image_id, anns in by_image.items():  # each reference image read once
        index, entry = images[image_id]
        rgb = _reference(path, index, entry, max_pixels)
        digest = image_digest(rgb)
        numbered += [(i, _example(path, i, ann, rgb, digest, categories[_id(ann["category_id"])])) for i, ann in anns]
    examples = [e for _, e in sorted(numbered, key=lambda pair: pair[0])]  # the file's order
    positive = {e.class_name for e in examples if e.positive}
    classes = tuple(c for c in categories.values() if c in positive)
    negative_only = [e for e in examples if e.class_name not in positive]
    if negative_only:
        raise ExamplesError(f"{negative_only[0].source}: class {negative_only[0].class_name!r} has negative examples "
                            "only (give it at least one positive example)")
    if not classes:
        raise ExamplesError(f"{path}: no annotations: an examples file needs at least one box or mask")
    return ExampleSet(tuple(examples), classes=classes, source=str(path))


def _entry(path: Path, kind: str, index: int, obj: Any) -> str:
    ident = f" (id {obj['id']})" if isinstance(obj, dict) and "id" in obj else ""
    return f"{path}: {kind} {index}{ident}"


def _id(value: Any) -> Any:
    """An id as COCO files spell it (ints, sometimes strings); lists and objects are never ids."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    return value


def _categories(path: Path, items: list) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for i, cat in enumerate(items):
        where = _entry(path, "category", i, cat)
        if not isinstance(cat, dict) or _id(cat.get("id")) is None:
            raise ExamplesError(f"{where}: a category needs an 'id' and a 'name'")
        name = cat.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ExamplesError(f"{where}: a category needs a non-empty 'name'")
        name = " ".join(name.split())
        if cat["id"] in out:
            raise ExamplesError(f"{where}: category id {cat['id']!r} is used twice")
        if name.lower() in (n.lower() for n in out.values()):
            raise ExamplesError(f"{where}: class name {name!r} is used twice")
        out[cat["id"]] = name
    return out


def _images(path: Path, items: list) -> dict[Any, tuple[int, dict]]:
    out: dict[Any, tuple[int, dict]] = {}
    for i, im in enumerate(items):
        where = _entry(path, "image", i, im)
        if not isinstance(im, dict) or _id(im.get("id")) is None or not isinstance(im.get("file_name"), str) \
                or not im["file_name"]:
            raise ExamplesError(f"{where}: an image needs an 'id' and a 'file_name'")
        if im["id"] in out:
            raise ExamplesError(f"{where}: image id {im['id']!r} is used twice")
        out[im["id"]] = (i, im)
    return out


def _reference(path: Path, index: int, entry: dict, max_pixels: Optional[int]) -> np.ndarray:
    where = _entry(path, "image", index, entry)
    file = path.parent / Path(entry["file_name"]).expanduser()
    if not file.is_file():
        raise ExamplesError(f"{where}: image {entry['file_name']!r} not found (looked at {file}; file names are "
                            "relative to the examples file's folder)")
    rgb = _load(file, where, max_pixels)
    h, w = rgb.shape[:2]
    given = (entry.get("width"), entry.get("height"))
    if given != (None, None) and given != (w, h):
        raise ExamplesError(f"{where}: the file says {given[0]}x{given[1]}, the image {entry['file_name']!r} is "
                            f"{w}x{h} as displayed (EXIF orientation applied): its boxes would be misplaced")
    return rgb


def _example(path: Path, index: int, ann: dict, rgb: np.ndarray, digest: str, name: str) -> Example:
    where = _entry(path, "annotation", index, ann)
    h, w = rgb.shape[:2]
    mask = None
    if ann.get("segmentation") not in (None, [], {}):
        mask = _mask(ann["segmentation"], h, w, where)
    bbox = ann.get("bbox")
    if bbox is None:
        if mask is None:
            raise ExamplesError(f"{where}: an annotation needs a 'bbox' [x, y, w, h] or a 'segmentation'")
        ys, xs = np.nonzero(mask)
        box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    else:
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox):
            raise ExamplesError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {bbox!r}")
        x, y, bw, bh = (float(v) for v in bbox)
        box = [x, y, x + bw, y + bh]
    negative = ann.get("negative", False)
    if not isinstance(negative, bool):
        raise ExamplesError(f"{where}: 'negative' must be true or false, got {negative!r}")
    try:
        return Example(class_name=name, image=rgb, box=box, mask=mask, positive=not negative,
                       source=f"{path}: annotation {index}" + (f" (id {ann['id']})" if "id" in ann else ""),
                       image_id=digest)
    except ValueError as e:
        raise ExamplesError(str(e)) from None


def _mask(seg: Any, h: int, w: int, where: str) -> np.ndarray:
    """A COCO ``segmentation`` (polygons, or RLE with string or list counts) -> ``bool [h, w]``."""
    from pycocotools import mask as mask_utils

    try:
        if isinstance(seg, list):
            if not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in p)
                       for p in seg):
                raise ValueError("polygons must be lists of at least 3 x, y pairs")
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg, dict) and isinstance(seg.get("size"), list) and "counts" in seg:
            if [int(v) for v in seg["size"]] != [h, w]:
                raise ValueError(f"its size {seg['size']} is not the image's [{h}, {w}]")
            counts = seg["counts"]
            if isinstance(counts, list):
                rle = mask_utils.frPyObjects(seg, h, w)
            elif isinstance(counts, str):
                rle = {"size": [h, w], "counts": counts.encode("ascii")}
            else:
                raise ValueError("RLE counts must be a string or a list of numbers")
        else:
            raise ValueError("expected polygons [[x, y, ...], ...] or an RLE {size, counts}")
        with warnings.catch_warnings():  # pycocotools' own __array__ vs NumPy 2 deprecation, harmless
            warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
            mask = mask_utils.decode(rle).astype(bool)
    except (ValueError, TypeError, UnicodeEncodeError, OverflowError) as e:
        raise ExamplesError(f"{where}: bad 'segmentation' ({e})") from None
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    if not mask.any():
        raise ExamplesError(f"{where}: empty mask")
    return mask
