"""One labeled image of the Python API (:class:`LabeledImage`): the pipeline's :class:`ImageResult` with the
pixels it was computed from, and its conversions (COCO dict, supervision ``Detections``, an overlay
picture, the writers' files)."""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from .structures import Detections, ImageInfo, ImageResult, Regions, Tags


@dataclass(frozen=True)
class LabeledImage:
    """What :meth:`openvocab.Labeler.label` returns for one image.

    Attributes:
        result: the pipeline's typed result (tags, boxes in xyxy pixels, masks as COCO RLE, concepts, captions).
        image: the RGB ``uint8 [H, W, 3]`` pixels it was computed from (EXIF-rotated).
        classes: the class numbering of COCO category ids (``1..K``) and YOLO/supervision class ids
            (``0..K-1``): the labeler's (its vocabulary's or its tagger's tag list) — ``None``: the labels found,
            sorted by name.
    """

    result: ImageResult
    image: np.ndarray
    classes: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{self.result.image.file}: image must be uint8 [H, W, 3]")
        if img.shape[:2] != (self.result.image.height, self.result.image.width):
            raise ValueError(f"{self.result.image.file}: image is {img.shape[1]}x{img.shape[0]} but the result says "
                             f"{self.result.image.width}x{self.result.image.height}")

    # -------------------------------------------------------------- the result's parts
    @property
    def info(self) -> ImageInfo:
        return self.result.image

    @property
    def tags(self) -> Tags:
        return self.result.tags

    @property
    def detections(self) -> Detections:
        return self.result.detections

    @property
    def regions(self) -> Optional[Regions]:
        return self.result.regions

    @property
    def caption(self) -> Optional[str]:
        """The image's caption (a captioner's, e.g. Tag2Text or Florence-2); ``None`` without one."""
        return self.result.caption

    def __len__(self) -> int:
        return len(self.result.detections)

    def class_list(self) -> list[str]:
        """:attr:`classes`, then any label outside them (sorted): the ids every conversion uses."""
        known = list(self.classes or ())
        return known + sorted(set(self.detections.labels) - set(known))

    # -------------------------------------------------------------- conversions
    def to_dict(self) -> dict:
        """The ``labels.jsonl`` line of this image (:mod:`openvocab.serialize`)."""
        from .serialize import result_to_dict

        return result_to_dict(self.result)

    def to_coco(self) -> dict:
        """A COCO dataset dict of this one image (``images``, ``annotations`` with RLE masks, ``categories``),
        loadable by ``pycocotools.coco.COCO`` (write it with ``json.dump``)."""
        from .writers.coco import build_coco

        return build_coco([self.result], self.class_list())

    def to_supervision(self):
        """The boxes (and masks) as ``supervision.Detections`` (``pip install 'openvocab[supervision]'``):
        ``xyxy``, ``confidence``, ``class_id`` (:meth:`class_list` order), ``mask`` (``bool [N, H, W]``, when a
        mask head ran) and ``data["class_name"]`` (plus ``"mask_score"``/``"region_caption"`` when present)."""
        try:
            import supervision as sv
        except ImportError:
            raise ImportError("to_supervision() needs the supervision package: pip install 'openvocab[supervision]'"
                              ) from None
        from .masks import decode_mask

        dets, regions = self.detections, self.regions
        ids = {n: i for i, n in enumerate(self.class_list())}
        data = {"class_name": np.asarray(dets.labels, dtype=str).reshape(len(dets))}
        mask = None
        if regions is not None:
            h, w = self.image.shape[:2]
            mask = (np.stack([decode_mask(m) for m in regions.masks]).astype(bool) if len(regions)
                    else np.zeros((0, h, w), bool))
            data["mask_score"] = np.asarray(regions.mask_scores, np.float32)
            if regions.captions is not None:
                data["region_caption"] = np.asarray(regions.captions, dtype=str).reshape(len(dets))
        return sv.Detections(xyxy=dets.boxes.astype(np.float32), confidence=dets.scores.astype(np.float32),
                             class_id=np.asarray([ids[n] for n in dets.labels], dtype=int), mask=mask, data=data)

    def render(self, **overlay_options) -> Image.Image:
        """The overlay picture (masks, boxes, labels, concepts, captions, tags): :class:`~openvocab.writers.OverlayWriter`
        with ``overlay_options`` (``mask_alpha``, ``max_tags``, ``font_size``, ``captions``, ``concepts``)."""
        from .writers.overlay import OverlayWriter

        return OverlayWriter(**overlay_options).render(self.result, self.image)

    def show(self, **overlay_options) -> Image.Image:
        """Show :meth:`render` (inline in a notebook, else in the system's image viewer) and return it. Without a
        display (a Linux server without ``$DISPLAY``) it only warns: save the returned picture instead."""
        picture = self.render(**overlay_options)
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            get_ipython = None
        if get_ipython is not None and get_ipython() is not None:
            display(picture)
        elif sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            warnings.warn("show(): no display here ($DISPLAY is not set); use .render().save('overlay.png')",
                          stacklevel=2)
        else:
            picture.show()
        return picture

    def save(self, out_dir: str | os.PathLike, formats: Sequence[str] = ("coco", "labelme", "yolo", "vis")
             ) -> dict[str, list[Path]]:
        """Write this image with the job's writers (``coco``, ``jsonl``, ``yolo``, ``labelme``, ``vis``) into
        ``out_dir``, in the layout of ``openvocab label``; returns the files written per format."""
        from .engine.job import FORMATS, parse_formats
        from .registry import WRITERS
        from .writers.base import WriterContext

        written: dict[str, list[Path]] = {}
        for name in parse_formats(list(formats)):
            writer = WRITERS.build(dict(FORMATS[name]))
            writer.open(out_dir, context=WriterContext(classes=tuple(self.class_list())))
            writer.write(self.result, self.image if writer.needs_image else None)
            writer.close()
            where = getattr(writer, "root", None)
            written[name] = (sorted(p for p in where.rglob("*") if p.is_file()) if where is not None
                             else [writer.out_dir / writer.filename])
        return written
