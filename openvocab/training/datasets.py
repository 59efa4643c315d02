"""Training datasets: COCO-format (boxes, masks, image tags) and JSONL (image -> tags).

Images load through :func:`openvocab.images.load_image`, the same loader inference uses (EXIF
orientation, RGB uint8); each model's training wrapper applies the same preprocessing as its
inference path. Items are typed :class:`TrainSample` objects; ``collate`` keeps them as a list.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from ..images import load_image
from ..registry import DATASETS
from ..structures import ImageInfo


@dataclass(frozen=True)
class TrainSample:
    """One training image.

    Attributes:
        image: ``uint8 [H, W, 3]`` RGB (displayed orientation).
        info: file and size.
        boxes: ``float32 [N, 4]`` xyxy absolute pixels; labels: N class/tag names.
        tags: image-level positive tags; negative_tags: verified-absent tags (others unannotated).
    """

    image: np.ndarray
    info: ImageInfo
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    negative_tags: Optional[tuple[str, ...]] = None


def collate(batch: Sequence[TrainSample]) -> list[TrainSample]:
    return list(batch)


def _resolve(root: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else root / p


@DATASETS.register_module()
class CocoTrainDataset(Dataset):
    """COCO instances file -> :class:`TrainSample` (boxes + category names; image ``tags`` field if any).

    Args:
        ann_file: COCO JSON. img_dir: folder of ``file_name`` (default: the JSON's folder).
        tags_from_boxes: add each box's category to the image tags.
    """

    def __init__(self, *, ann_file: str, img_dir: Optional[str] = None, tags_from_boxes: bool = True) -> None:
        path = Path(ann_file)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            cats = {c["id"]: c["name"] for c in data["categories"]}
            images = data["images"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{ann_file}: not a COCO annotation file ({type(e).__name__}: {e})") from None
        self.root = Path(img_dir) if img_dir else path.parent
        anns: dict[int, list] = {}
        for a in data.get("annotations", []):
            anns.setdefault(a["image_id"], []).append(a)
        self.items = []
        for im in images:
            rows = [a for a in anns.get(im["id"], []) if not a.get("iscrowd", 0)]
            boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                               a["bbox"][1] + a["bbox"][3]] for a in rows], np.float32).reshape(-1, 4)
            labels = tuple(cats[a["category_id"]] for a in rows)
            tags = [t["name"] if isinstance(t, dict) else str(t) for t in im.get("tags", [])]
            if tags_from_boxes:
                tags += [l for l in labels if l not in tags]
            neg = im.get("negative_tags")
            self.items.append((im["file_name"], boxes, labels, tuple(dict.fromkeys(tags)),
                               None if neg is None else tuple(neg)))
        self.categories = [cats[k] for k in sorted(cats)]

    @property
    def metainfo(self) -> dict:
        """What mmengine's Runner hands to metrics and visualizers (``dataset_meta``)."""
        return {"classes": tuple(self.categories)}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> TrainSample:
        name, boxes, labels, tags, neg = self.items[i]
        image, info = load_image(str(_resolve(self.root, name)))
        return TrainSample(image=image, info=info, boxes=boxes, labels=labels, tags=tags, negative_tags=neg)


@DATASETS.register_module()
class JsonlTagDataset(Dataset):
    """JSONL, one image per line: ``{"file": ..., "tags": [...], "negative_tags"?: [...]}``
    (the output of ``openvocab parse-captions`` or of ``openvocab label``'s labels.jsonl)."""

    def __init__(self, *, ann_file: str, img_dir: Optional[str] = None) -> None:
        path = Path(ann_file)
        self.root = Path(img_dir) if img_dir else path.parent
        self.items = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                tags = [t["name"] if isinstance(t, dict) else str(t) for t in obj["tags"]]
                neg = obj.get("negative_tags")
                self.items.append((obj["file"], tuple(tags), None if neg is None else tuple(neg)))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{ann_file}:{n}: bad line ({type(e).__name__}: {e})") from None

    @property
    def metainfo(self) -> dict:
        """What mmengine's Runner hands to metrics and visualizers: the tags seen, in first-seen order."""
        return {"classes": tuple(dict.fromkeys(t for _, tags, _ in self.items for t in tags))}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> TrainSample:
        name, tags, neg = self.items[i]
        image, info = load_image(str(_resolve(self.root, name)))
        return TrainSample(image=image, info=info, tags=tags, negative_tags=neg)
