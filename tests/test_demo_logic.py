"""The web demo's work without a browser (demo/logic.py): config facts, messages for bad requests, a run with
the tagger switched off, and the download files (the browser test drives the page itself)."""
from __future__ import annotations

import json
import zipfile

import importlib

from openvocab.commands import demo_module

# the demo package as `openvocab demo` loads it (from the checkout, or from the installed wheel)
logic = importlib.import_module(demo_module().__package__ + ".logic")


def test_config_facts_and_settings():
    info = logic.config_info("tiny_random")
    assert info.random_stages == ("tagger", "detector", "mask_head") and "Random weights" in info.banner
    assert (info.box_threshold, info.text_threshold) == (0.0, 0.0)
    real = logic.config_info("detect_segment")
    assert real.banner == "" and real.stages == ("detector", "mask_head") and "dog" in real.vocabulary
    assert logic.stage_choices(real) == ["mask head"]
    assert logic.Settings("tiny_random", box_threshold=0.0, text_threshold=0.3).options() == {"detector.text_threshold": 0.3}
    assert logic.Settings("tiny_random", stages=("tagger",)).without() == ("mask_head", "stuff_segmenter")
    clipseg = logic.config_info("full_pipeline_clipseg")  # the transformers backends are offered too
    assert logic.stage_choices(clipseg) == ["tagger", "mask head", "stuff masks"]
    assert logic.config_info("tag_sam3").stages == ("tagger", "segmenter")
    assert "tiny_random" in logic.config_choices() and len(logic.demo_images()) == 4


def test_messages_and_a_run_without_the_tagger(tmp_path):
    cache = logic.LabelerCache()
    settings = logic.Settings("tiny_random", stages=("mask head",))
    assert "upload an image" in logic.run_label(cache, None, settings, "").status
    image = logic.demo_images()[0]
    assert "type a vocabulary" in logic.run_label(cache, image, settings, "  ").status
    assert "type the text" in logic.run_grounding(cache, image, " ", settings)[2]

    out = logic.run_label(cache, image, settings, "circle, square", out_root=tmp_path)
    assert out.status.startswith("shapes_1.jpg: 2 tags"), out.status
    assert [row[:3] for row in out.tags] == [["circle", 1.0, "★ user"], ["square", 1.0, "★ user"]]
    assert out.regions and {row[1] for row in out.regions} <= {"circle", "square"}
    assert all(row[4] != "" for row in out.regions)  # mask areas: the mask head ran
    coco, labelme, yolo = out.files
    data = json.loads(coco.read_text())
    assert [c["name"] for c in data["categories"]] == ["circle", "square"]
    assert data["images"][0]["file_name"] == "shapes_1.jpg" and len(data["annotations"]) == len(out.regions)
    shapes = json.loads(labelme.read_text())["shapes"]
    assert sum(s["shape_type"] == "rectangle" for s in shapes) == len(out.regions)
    names = zipfile.ZipFile(yolo).namelist()
    # the Ultralytics dataset layout of openvocab label (data.yaml, labels/train/)
    assert sorted(n for n in names if not n.endswith("/")) == ["data.yaml", "labels/train/shapes_1.txt"]

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    message = logic.run_label(cache, str(bad), settings, "circle").status
    assert message.startswith("**Error:** broken.jpg:") and str(tmp_path) not in message
