"""Swapping a stage is one line: a config that gives a stage another ``type`` gets exactly its own dict for it
(not a merge with the base's keyword arguments), and a third-party detector plugin (a class with ``setup`` and
``detect``) runs end to end through ``openvocab label`` that way."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from openvocab.cli import load_config, main
from openvocab.config import configs_dir

PLUGINS = Path(__file__).parent / "plugins"


def _child(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "child.py"
    path.write_text(f"_base_ = {str(configs_dir() / 'tiny_random.py')!r}\n" + body)
    return path


def test_a_new_type_replaces_the_base_stage_whole(tmp_path):
    cfg = load_config(str(_child(tmp_path, "detector = dict(type='StripeDetector', max_tags=3)\n")))
    assert cfg.detector.to_dict() == {"type": "StripeDetector", "max_tags": 3}
    assert cfg.mask_head.type == "TAPMaskHead" and cfg.mask_head.variant == "tiny"  # other stages untouched
    # --cfg-options still apply on top of the swapped stage
    cfg = load_config(str(_child(tmp_path, "detector = dict(type='StripeDetector')\n")), ["detector.max_tags=1"])
    assert cfg.detector.to_dict() == {"type": "StripeDetector", "max_tags": 1}


def test_the_same_type_still_overrides_key_by_key(tmp_path):
    cfg = load_config(str(_child(tmp_path, "detector = dict(type='GroundingDINODetector', box_threshold=0.2)\n")))
    assert cfg.detector.box_threshold == 0.2 and cfg.detector.variant == "tiny" and cfg.detector.max_detections == 5
    cfg = load_config(str(_child(tmp_path, "detector = dict(max_detections=7)\n")))  # no type: a plain override
    assert cfg.detector.type == "GroundingDINODetector" and cfg.detector.max_detections == 7


def test_nested_dicts_of_a_swapped_stage_are_the_childs_own(tmp_path):
    body = "mask_head = dict(type='OtherHead', concepts=dict(names=['a']), seed=1)\n"
    cfg = load_config(str(_child(tmp_path, body)))
    # the base TAP head's concepts carried text_encoder='random': a swapped stage keeps none of it
    assert cfg.mask_head.to_dict() == {"type": "OtherHead", "concepts": {"names": ["a"]}, "seed": 1}


def test_a_config_without_base_is_loaded_as_written(tmp_path):
    path = tmp_path / "flat.py"
    path.write_text("detector = dict(type='StripeDetector')\n")
    assert load_config(str(path)).detector.to_dict() == {"type": "StripeDetector"}


def test_third_party_detector_plugin_runs_through_label(tmp_path, shared_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    config = _child(tmp_path, "custom_imports = dict(imports=['tagging', 'grounding', 'third_party'])\n"
                              "detector = dict(type='StripeDetector')\n")
    photos = sorted((shared_dir / "images").glob("*.jpg"))
    out = tmp_path / "out"
    rc = main(["label", *map(str, photos), "--config", str(config), "--out", str(out), "--formats", "coco,jsonl",
               "--no-progress", "--workers", "1"])
    assert rc == 0
    coco = json.loads((out / "coco.json").read_text())
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    assert len(coco["images"]) == len(photos)
    for im in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
        boxable = [t["name"] for t in im["tags"] if t["boxable"]]
        w, h = im["width"], im["height"]
        # the plugin's stripes, clipped to the image by the pipeline, each with a TAP mask
        assert [cats[a["category_id"]] for a in anns] == boxable[:2]
        for k, a in enumerate(anns):
            assert a["bbox"] == pytest.approx([0, h / 2 + k, w, 20], abs=1e-3)
            assert a["score"] == pytest.approx(0.9 - 0.1 * k, abs=1e-6)
            assert a["segmentation"]["size"] == [h, w]
