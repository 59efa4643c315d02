"""Output writers, registered in :data:`openvocab.registry.WRITERS` by class name.

``CocoWriter`` (``coco.json``), ``JsonlWriter`` (``labels.jsonl``), ``YoloWriter`` (``yolo/``, ``yolo-seg/``),
``LabelMeWriter`` (``labelme/``), ``CvatWriter`` / ``VocWriter`` (``cvat/``, ``voc/``, via Datumaro),
``LabelStudioWriter`` (``labelstudio/``), ``FiftyOneWriter`` (``fiftyone/``) and ``OverlayWriter`` (``vis/``); see :mod:`.base` for the interface.

Video writers (:mod:`.video` for their interface): ``MotWriter`` (``mot/``), ``CocoVideoWriter`` (``coco_video.json``),
``CvatVideoWriter`` (``cvat_video/``), ``YoloVideoWriter`` (``yolo_video/``, ``yolo_seg_video/``) and
``OverlayVideoWriter`` (``vis_video/``).
"""
from .base import (OutputNamer, Writer, WriterContext, atomic_open, atomic_write_bytes, atomic_write_json,
                   atomic_write_text)
from .coco import CocoWriter, build_coco
from .exchange import CvatWriter, FiftyOneWriter, VocWriter
from .jsonl import JsonlWriter
from .labelme import LabelMeWriter
from .labelstudio import LabelStudioWriter
from .overlay import OverlayWriter, tag_color
from .yolo import YoloWriter
from .coco_video import CocoVideoWriter
from .cvat_video import CvatVideoWriter
from .mot import MotWriter
from .overlay_video import OverlayVideoWriter
from .video import VideoWriter
from .yolo_video import YoloVideoWriter

__all__ = ["Writer", "WriterContext", "OutputNamer", "atomic_open", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "CocoWriter", "build_coco", "CvatWriter", "VocWriter", "FiftyOneWriter", "JsonlWriter", "YoloWriter", "LabelMeWriter", "LabelStudioWriter", "OverlayWriter",
           "tag_color", "VideoWriter", "MotWriter", "CocoVideoWriter", "CvatVideoWriter", "YoloVideoWriter",
           "OverlayVideoWriter"]
