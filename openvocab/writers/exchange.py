"""CVAT and Pascal VOC through Datumaro, and a FiftyOne-loadable COCO layout.

CVAT and VOC are not written by hand: the job's COCO (:class:`~.coco.CocoWriter`, RLE masks) is
imported by `Datumaro <https://github.com/open-edge-platform/datumaro>`_ (the library CVAT itself
uses for its imports and exports), which exports

* ``cvat/default.xml``: CVAT for images 1.1: per image a ``<box>`` and a ``<mask>`` (CVAT's RLE) per
  object, sharing a ``group_id``; the labels in the job's class order (``pip install 'openvocab[formats]'``);
* ``voc/``: Pascal VOC: ``Annotations/<name>.xml`` (boxes), ``SegmentationClass/`` and
  ``SegmentationObject/`` PNGs, ``ImageSets/``, and ``labelmap.txt`` (``background``, then the job's classes).

Image names are COCO's ``file_name`` (relative to the image root). The images go beside the labels, where
each format's readers look for them, as the YOLO writer puts them (``images=``): ``cvat/images/<file_name>`` (a
CVAT task's layout; symbolic links to the inputs by default) and ``voc/JPEGImages/<file_name>`` (hard links by
default, copies across file systems: Datumaro's VOC reader refuses a link that leads out of the folder). Scores and other
extra fields are dropped (neither format has them; COCO and ``labels.jsonl`` keep them).

``fiftyone/`` is FiftyOne's ``COCODetectionDataset`` layout: ``labels.json`` (the COCO file) and ``data``
(a symbolic link to the image root)::

    fo.Dataset.from_dir(dataset_dir="OUT/fiftyone", dataset_type=fo.types.COCODetectionDataset,
                        label_types=["detections", "segmentations"])
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from ..registry import WRITERS
from ..structures import ImageResult
from .base import IMAGE_MODES, Writer, make_dirs, place_image, plain_name
from .coco import CocoWriter

log = logging.getLogger("openvocab")

DATUMARO_HINT = "pip install 'openvocab[formats]' (Datumaro)"


def _datumaro():
    try:
        import datumaro
    except ImportError as e:
        raise ImportError(f"this format is exported by Datumaro, which is not installed ({e}): {DATUMARO_HINT}") from None
    return datumaro


def _replace_folder(staged: Path, dest: Path) -> None:
    """Put the finished folder ``staged`` at ``dest`` (renames; the old ``dest`` is removed after)."""
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}.part")
        os.replace(dest, old)
    os.replace(staged, dest)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()


class DatumaroWriter(Writer):
    """Exports the job's COCO to ``<out>/<subdir>`` in a Datumaro format (base of the CVAT and VOC writers)."""

    #: Datumaro's name of the format
    format_name = ""
    #: the folder of the export where the format's readers look for the images
    image_folder = ""

    def __init__(self, *, subdir: str, images: str = "symlink") -> None:
        super().__init__()
        self.subdir = plain_name(subdir, "subdir")
        if images not in IMAGE_MODES:
            raise ValueError(f"images must be one of {IMAGE_MODES}, got {images!r}")
        self.images = images

    def _open(self) -> None:
        _datumaro()  # a missing library stops the job before any image is labeled

    def export_options(self) -> dict:
        return {}

    def finish(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        dm = _datumaro()
        with tempfile.TemporaryDirectory(dir=self.out_dir, prefix=f".{self.subdir}.", suffix=".part") as tmp:
            src = Path(tmp) / "coco"
            coco = CocoWriter(filename="instances_default.json")
            coco.open(src / "annotations", context=self.context)
            coco.finish(results)
            coco.close()
            (src / "images").mkdir()
            dataset = dm.Dataset.import_from(str(src), "coco_instances")
            dataset = dataset.transform("remove_attributes")
            staged = Path(tmp) / self.subdir
            dataset.export(str(staged), self.format_name, save_media=False, **self.export_options())
            self._place_images(staged, results)
            _replace_folder(staged, self.out_dir / self.subdir)
        super().finish(results)

    def _place_images(self, staged: Path, results: Callable[[], Iterable[ImageResult]]) -> None:
        """Each image at ``<image_folder>/<file_name>`` of the export (a link or a copy)."""
        for r in results():
            name = self.file_name(r)
            parts = name.split("/")
            if os.path.isabs(name) or any(p in ("", ".", "..") for p in parts):
                log.warning("%s: not under the image root, so not placed beside the %s labels", r.image.file,
                            self.format_name)
                continue
            folder = make_dirs(staged, self.image_folder, *parts[:-1])
            place_image(r.image.file, folder / parts[-1], self.images)


@WRITERS.register_module()
class CvatWriter(DatumaroWriter):
    """CVAT for images 1.1 XML (``<out>/<subdir>/default.xml``), exported by Datumaro."""

    format_name = "cvat"
    image_folder = "images"

    def __init__(self, *, subdir: str = "cvat", images: str = "symlink") -> None:
        super().__init__(subdir=subdir, images=images)


@WRITERS.register_module()
class VocWriter(DatumaroWriter):
    """Pascal VOC (``<out>/<subdir>/``), exported by Datumaro; ``labelmap.txt``: background, then the job's
    classes in order."""

    format_name = "voc"
    image_folder = "JPEGImages"

    def __init__(self, *, subdir: str = "voc", images: str = "hardlink") -> None:
        super().__init__(subdir=subdir, images=images)

    def export_options(self) -> dict:
        return {"label_map": "source"}


@WRITERS.register_module()
class FiftyOneWriter(CocoWriter):
    """FiftyOne's ``COCODetectionDataset`` layout: ``<out>/<subdir>/labels.json`` and ``data`` -> the image root."""

    def __init__(self, *, subdir: str = "fiftyone", indent=None) -> None:
        super().__init__(filename="labels.json", indent=indent)
        self.subdir = plain_name(subdir, "subdir")

    def _open(self) -> None:
        if self.context.image_root is None:
            raise ValueError("the FiftyOne layout needs the job's image root")
        root = make_dirs(self.out_dir, self.subdir)
        link = root / "data"
        target = os.path.abspath(self.context.image_root)
        if not (link.is_symlink() and os.readlink(link) == target):
            tmp = root / f".data.{os.getpid()}.part"
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(target, tmp, target_is_directory=True)
            os.replace(tmp, link)
        self.out_dir = root
