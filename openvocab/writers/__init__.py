"""Output writers, registered in :data:`openvocab.registry.WRITERS` by class name.

``CocoWriter`` (``coco.json``), ``JsonlWriter`` (``labels.jsonl``), ``YoloWriter`` (``yolo/``, ``yolo-seg/``),
``LabelMeWriter`` (``labelme/``), ``CvatWriter`` / ``VocWriter`` (``cvat/``, ``voc/``, via Datumaro),
``LabelStudioWriter`` (``labelstudio/``), ``FiftyOneWriter`` (``fiftyone/``) and ``OverlayWriter`` (``vis/``); see :mod:`.base` for the interface.
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

__all__ = ["Writer", "WriterContext", "OutputNamer", "atomic_open", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "CocoWriter", "build_coco", "CvatWriter", "VocWriter", "FiftyOneWriter", "JsonlWriter", "YoloWriter", "LabelMeWriter", "LabelStudioWriter", "OverlayWriter",
           "tag_color"]
