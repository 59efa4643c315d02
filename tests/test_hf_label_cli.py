"""Every transformers backend end to end through ``openvocab label``, on the shared photos, through every writer.

Each case is the shipped config (``configs/detect_*.py``, ``full_pipeline_sam2.py``, ``tag_sam3.py``,
``full_pipeline_clipseg.py``) with its models pointed at tiny random ones (a child config; RAM++, Grounding
DINO and TAP made tiny by key overrides, the transformers stages by their ``model`` folder). OWLv2 runs on the
small photo only: its processor blurs the square-padded full image with a kernel that grows with the
downscale factor, minutes on CPU for a 12-megapixel photo at a tiny model's input size.
"""
from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from openvocab.cli import main
from openvocab.config import configs_dir
from openvocab.engine.job import FORMATS
from openvocab.masks import decode_mask, mask_box

TINY_TAGGER = "tagger = dict(variant='tiny', checkpoint=None, class_thresholds=0.0)\n"
# the tiny tags that are not boxable (WordNet's split of them, without the seconds WordNet takes to load)
LIST_FILTER = ("boxable_filter = dict(type='ListBoxableFilter', not_boxable=['water', 'sunset', 'night', 'running', "
               "'red', 'blue'{}])\n")
TINY_DETECTOR = ("detector = dict(variant='tiny', checkpoint=None, box_threshold=0.0, text_threshold=0.0, "
                 "max_detections=2, resize=(160, 266))\n")
TINY_TAP = "mask_head = dict(variant='tiny', checkpoint=None, concepts=None)\n"
VOCAB = "vocabulary = ['cat', 'dog', 'red car', 'person']\n"

# case: (shipped config, child lines, the stage under test -> the model folder it must have run with, masks?)
CASES = {
    "grounding_dino": ("detect_gdino_hf", VOCAB + "detector = dict(model={grounding_dino}, box_threshold=0.2, "
                       "text_threshold=0.0, max_detections=3)\n", {"detector": "grounding_dino"}, False),
    "mm_grounding_dino+sam_hq": ("detect_mmgdino", VOCAB + "detector = dict(model={mm_grounding_dino}, "
                                 "box_threshold=0.2, text_threshold=0.0, max_detections=2)\n"
                                 "mask_head = dict(type='HFSamMaskHead', model={sam_hq})\n",
                                 {"detector": "mm_grounding_dino", "mask_head": "sam_hq"}, True),
    "omdet+sam": ("detect_omdet", VOCAB + "detector = dict(model={omdet}, box_threshold=0.05, max_detections=2)\n"
                  "mask_head = dict(type='HFSamMaskHead', model={sam})\n", {"detector": "omdet", "mask_head": "sam"},
                  True),
    "owlvit": ("detect_owlv2", VOCAB + "detector = dict(model={owlvit}, box_threshold=0.05, max_detections=3)\n",
               {"detector": "owlvit"}, False),
    "owlv2": ("detect_owlv2", VOCAB + "detector = dict(model={owlv2}, box_threshold=0.05, max_detections=3)\n",
              {"detector": "owlv2"}, False),
    "sam2": ("full_pipeline_sam2", TINY_TAGGER + LIST_FILTER.format("") + TINY_DETECTOR
             + "mask_head = dict(model={sam2})\n",
             {"mask_head": "sam2"}, True),
    "sam3": ("tag_sam3", TINY_TAGGER + LIST_FILTER.format("") + "segmenter = dict(model={sam3}, threshold=0.2532, "
             "max_detections=3, text_batch_size=4)\n", {"segmenter": "sam3"}, True),
    "clipseg": ("full_pipeline_clipseg", TINY_TAGGER + LIST_FILTER.format(", 'sky', 'grass', 'road'") + TINY_DETECTOR
                + TINY_TAP +
                "stuff_segmenter = dict(model={clipseg}, min_area=0.0)\n", {"stuff_segmenter": "clipseg"}, True),
}


def _fingerprint(out: Path) -> dict:
    con = sqlite3.connect(str(out / ".openvocab" / "state.sqlite"))
    try:
        return json.loads(con.execute("SELECT value FROM meta WHERE name = 'fingerprint'").fetchone()[0])
    finally:
        con.close()


def _every_format_has_the_coco_objects(out: Path, images: int, objects: int) -> None:
    """Each writer's output holds every image and as many objects as coco.json."""
    assert sorted(FORMATS) == sorted(["coco", "jsonl", "yolo", "yolo-seg", "labelme", "cvat", "voc", "labelstudio",
                                      "fiftyone", "vis"])  # a new format is checked here too
    jsonl = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert len(jsonl) == images and sum(len(r["detections"]) for r in jsonl) == objects
    for sub in ("yolo", "yolo-seg"):
        files = list((out / sub / "labels").rglob("*.txt"))
        assert len(files) == images and sum(len(f.read_text().splitlines()) for f in files) == objects, sub
    labelme = [json.loads(f.read_text()) for f in (out / "labelme").glob("*.json")]
    assert len(labelme) == images
    assert sum(s["shape_type"] == "rectangle" for d in labelme for s in d["shapes"]) == objects
    tasks = json.loads((out / "labelstudio" / "tasks.json").read_text())
    assert len(tasks) == images
    assert sum(r["type"] == "rectanglelabels" for t in tasks for r in t["predictions"][0]["result"]) == objects
    assert len(json.loads((out / "fiftyone" / "labels.json").read_text())["annotations"]) == objects
    assert len(list((out / "vis").iterdir())) == images
    # cvat and voc (Datumaro's exports)
    assert len(list(ET.parse(out / "cvat" / "default.xml").getroot().iter("box"))) == objects
    voc = list((out / "voc" / "Annotations").glob("*.xml"))
    assert len(voc) == images and sum(len(ET.parse(f).getroot().findall("object")) for f in voc) == objects


@pytest.mark.parametrize("case", sorted(CASES))
def test_backend_labels_the_shared_photos(case, hf_models, shared_dir, tmp_path):
    base, lines, stages, masks = CASES[case]
    config = tmp_path / f"{case.replace('+', '_')}.py"
    config.write_text(f"_base_ = {str(configs_dir() / (base + '.py'))!r}\n"
                      + lines.format(**{k: repr(str(v)) for k, v in hf_models.items()}))
    photos = sorted((shared_dir / "images").glob("*.jpg"))
    if case == "owlv2":
        photos = [shared_dir / "images" / "demo4.jpg"]
    out = tmp_path / "out"
    rc = main(["label", *map(str, photos), "--config", str(config), "--out", str(out), "--batch-size", "2",
               "--formats", ",".join(FORMATS), "--no-progress", "--workers", "1"])
    assert rc == 0
    used = _fingerprint(out)["stages"]
    for stage, model in stages.items():  # the transformers stage ran, with the tiny model
        assert used[stage]["model"] == str(hf_models[model]), stage

    coco = json.loads((out / "coco.json").read_text())
    assert len(coco["images"]) == len(photos)
    _every_format_has_the_coco_objects(out, len(photos), len(coco["annotations"]))
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    stuff_seen = 0
    for im in coco["images"]:
        tags = {t["name"]: t for t in im["tags"]}
        for a in (a for a in coco["annotations"] if a["image_id"] == im["id"]):
            tag = tags[cats[a["category_id"]]]  # every box is one of the image's tags
            x, y, w, h = a["bbox"]
            assert x >= 0 and y >= 0 and x + w <= im["width"] + 1e-3 and y + h <= im["height"] + 1e-3
            assert ("segmentation" in a) == masks
            if not tag["boxable"]:  # only a stuff segmenter labels tags that are not boxable
                assert "stuff_segmenter" in stages
                m = decode_mask(a["segmentation"])
                np.testing.assert_allclose([x, y, x + w, y + h], mask_box(m), atol=1e-3)  # its box is its mask's
                stuff_seen += 1
    assert coco["annotations"], "the tiny backend should find something on the photos"
    assert ("stuff_segmenter" in stages) == (stuff_seen > 0)
