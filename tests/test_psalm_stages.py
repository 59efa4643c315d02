"""PSALM's three faces (segmenter, detector with free text, promptable mask head) end to end on the tiny random
model: through ``openvocab label`` / ``openvocab detect`` and the writers, and their stage APIs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from grounding.psalm import PSALMDetector, PSALMMaskHead, PSALMSegmenter
from grounding.psalm.preprocess import box_mask, disc_mask, transform_prompt_mask
from grounding.psalm.weights import HF_REPO, LICENCE
from openvocab.cli import main
from openvocab.config import configs_dir
from openvocab.masks import decode_mask, mask_box
from openvocab.structures import Detections

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "images"
FORMATS = ["--formats", "coco,jsonl,yolo,labelme", "--vis", "--no-progress"]


def _image(name: str = "shapes_1.jpg") -> np.ndarray:
    return np.asarray(Image.open(DEMO / name).convert("RGB"))


def _check_outputs(out: Path) -> COCO:
    coco = COCO(str(out / "coco.json"))
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns, "the tiny PSALM should label something on every demo image"
    lines = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and sum(len(line["detections"]) for line in lines) == len(anns)
    for line in lines:
        boxable = {t["name"] for t in line["tags"] if t["boxable"]}
        for det in line["detections"]:
            assert det["label"] in boxable
            mask = decode_mask(det["mask"])
            assert mask.shape == (line["height"], line["width"]) and mask.any()
    assert len(list((out / "vis").glob("*.jpg"))) == 4
    assert len(list((out / "labelme").glob("*.json"))) == 4
    rows = [r for f in (out / "yolo" / "labels").glob("*/*.txt") for r in f.read_text().splitlines()]
    assert len(rows) == len(anns)
    return coco


def test_segmenter_face_labels_through_every_writer(tmp_path):
    out = tmp_path / "seg"
    assert main(["label", str(DEMO), "--config", "tiny_tag_psalm", "--out", str(out), *FORMATS]) == 0
    coco = _check_outputs(out)
    for ann in coco.loadAnns(coco.getAnnIds()):  # a segmenter's box is its mask's extent
        x1, y1, x2, y2 = mask_box(coco.annToMask(ann).astype(bool))
        np.testing.assert_allclose(ann["bbox"], [x1, y1, x2 - x1, y2 - y1], atol=1e-3)


def test_detector_and_mask_head_faces_label_with_one_shared_model(tmp_path):
    out = tmp_path / "det"
    assert main(["label", str(DEMO), "--config", "tiny_psalm", "--out", str(out), "--batch-size", "2", *FORMATS]) == 0
    _check_outputs(out)
    from openvocab.config import load_config
    from openvocab.build import build_pipeline

    pipe = build_pipeline(load_config("tiny_psalm"))
    pipe.detector.setup("cpu")
    pipe.mask_head.setup("cpu")
    assert pipe.detector.predictor.model is pipe.mask_head.predictor.model  # loaded once


def test_free_text_detect_gives_the_referred_box(capsys):
    text = "the man on the left holding a cup"
    assert main(["detect", text, str(DEMO / "shapes_1.jpg"), str(DEMO / "shapes_2.jpg"), "--config", "tiny_psalm",
                 "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["text"] == text and len(row["detections"]) == 1  # text_top_k=1: the official top-1
        det = row["detections"][0]
        x1, y1, x2, y2 = det["box"]
        assert det["phrase"] == text and 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480 and 0 <= det["score"] <= 1
        assert decode_mask(det["mask"]).sum() == det["mask_area"] > 0  # the referred mask, not only its box


def test_free_text_is_one_referring_sentence():
    det = PSALMDetector(checkpoint=None, variant="tiny")
    det.setup("cpu")
    plain, dotted = det.detect_text([_image(), _image()], ["a red circle", " a red circle. "])
    assert plain.detections.scores.tolist() == dotted.detections.scores.tolist()  # the prompt adds the period itself
    assert dotted.detections.phrases == (" a red circle. ",) and dotted.detections.labels == dotted.detections.phrases
    for found in (plain, dotted):  # the referred object's mask comes with its box (its extent)
        (mask,) = [decode_mask(m) for m in found.regions.masks]
        ys, xs = np.nonzero(mask)
        assert mask.any() and found.detections.boxes[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    with pytest.raises(ValueError, match="description"):
        det.detect_text([_image()], [" . "])


def test_mask_head_swaps_in_for_tap(tmp_path):
    cfg = tmp_path / "swap.py"
    cfg.write_text(f"_base_ = {str(configs_dir() / 'tiny_random.py')!r}\n"
                   "mask_head = dict(type='PSALMMaskHead', checkpoint=None, variant='tiny')\n")
    out = tmp_path / "swap"
    assert main(["label", str(DEMO), "--config", str(cfg), "--out", str(out), "--formats", "jsonl",
                 "--no-progress"]) == 0
    lines = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    dets = [d for line in lines for d in line["detections"]]
    assert dets and all(decode_mask(d["mask"]).any() for d in dets)


@pytest.fixture(scope="module")
def head():
    h = PSALMMaskHead(checkpoint=None, variant="tiny")
    h.setup("cpu")
    return h


def test_mask_head_boxes_and_points(head):
    image = _image()
    head.set_image(image)
    boxes = np.array([[10, 20, 200, 220], [300, 100, 420, 300], [0, 0, 640, 480]], np.float32)
    regions = head.predict(boxes=boxes)
    assert len(regions) == 3 and all(decode_mask(m).shape == (480, 640) for m in regions.masks)
    assert ((regions.mask_scores >= 0) & (regions.mask_scores <= 1)).all()
    points = np.array([[[100, 100], [500, 400]], [[320, 240], [0, 0]]], np.float32)
    regions = head.predict(points=points, point_labels=np.array([[1, 1], [1, -1]]))
    assert len(regions) == 2
    with pytest.raises(ValueError, match="no foreground point"):
        head.predict(points=points[:1], point_labels=np.array([[0, 0]]))
    with pytest.raises(ValueError, match="needs boxes"):
        head.predict()


def test_mask_head_job_path_encodes_only_images_with_boxes(head):
    before = head.encoded_images
    dets = [Detections(boxes=[[5, 5, 50, 60]], scores=[0.9], labels=("a",)), Detections()]
    regions = head.segment_batch([_image(), _image("shapes_2.jpg")], dets)
    assert [len(r) for r in regions] == [1, 0] and head.encoded_images == before + 1


def test_prompt_masks_follow_the_official_drawing():
    m = box_mask([2, 3, 7, 5], 10, 12)
    assert m.sum() == 10 and m[3:5, 2:7].all()  # rows 3..4, columns 2..6
    assert disc_mask(np.array([[50.5, 50.5]]), 101, 101).sum() == 317  # lattice points within radius 10
    t = transform_prompt_mask(box_mask([0, 0, 2, 2], 300, 200), 64)  # longer side 300 -> 64: 2x2 px vanish
    assert t.shape == (64, 64) and t.sum() >= 1


def test_segmenter_modes_and_tags():
    seg = PSALMSegmenter(checkpoint=None, variant="tiny", threshold=0.0, max_detections=3)
    seg.setup("cpu")
    images = [_image(), _image("shapes_3.jpg"), _image("shapes_4.jpg")]
    names = [["dog", "background", "dog", "cat"], [], ["tree"]]
    for mode in ("instance", "panoptic", "semantic"):
        seg.mode = mode
        before = seg.encoded_images
        found = seg.segment(images, names)
        assert seg.encoded_images == before + 2  # the image without tags is never encoded
        assert len(found[1]) == 0 and len(found[0]) <= 3
        assert set(found[0].detections.labels) <= {"dog", "cat"} and set(found[2].detections.labels) <= {"tree"}
        masks = [decode_mask(m) for m in found[0].regions.masks]
        if mode != "instance" and masks:
            assert np.sum(masks, 0).max() <= 1  # panoptic and semantic masks never overlap
        if mode == "semantic":
            assert len(set(found[0].detections.labels)) == len(found[0])  # one mask per class


def test_options_are_checked():
    with pytest.raises(ValueError, match="mode"):
        PSALMSegmenter(checkpoint=None, variant="tiny", mode="boxes")
    with pytest.raises(ValueError, match="random weights only"):
        PSALMDetector(checkpoint=HF_REPO, variant="tiny")
    with pytest.raises(ValueError, match="threshold"):
        PSALMDetector(checkpoint=None, variant="tiny", threshold=2)
    with pytest.raises(ValueError, match="text_top_k"):
        PSALMDetector(checkpoint=None, variant="tiny", text_top_k=0)
    with pytest.raises(ValueError, match="setup"):
        PSALMMaskHead(checkpoint=None, variant="tiny").set_image(_image())


def test_missing_checkpoint_names_what_to_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENVOCAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    cfg = tmp_path / "real.py"
    cfg.write_text("custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)\n"
                   "tagger = dict(type='RAMPlusTagger', variant='tiny', checkpoint=None)\n"
                   "segmenter = dict(type='PSALMSegmenter', checkpoint='EnmingZhang/PSALM')\n")
    rc = main(["label", str(DEMO / "shapes_1.jpg"), "--config", str(cfg), "--out", str(tmp_path / "out"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "EnmingZhang/PSALM" in err and "hf download EnmingZhang/PSALM" in err
    assert PSALMSegmenter().remote_repos()[0].repo == HF_REPO


def test_readme_lists_psalm_with_its_licence():
    readme = (ROOT / "README.md").read_text()
    rows = [r for r in readme.splitlines() if r.startswith("|") and f"`{HF_REPO}`" in r]
    assert len(rows) == 1 and rows[0].rstrip(" |").endswith(LICENCE)
    for name in ("tag_psalm.py", "psalm.py", "detect_psalm.py", "tiny_psalm.py", "tiny_tag_psalm.py"):
        assert (configs_dir() / name).is_file() and f"`{name}`" in readme
