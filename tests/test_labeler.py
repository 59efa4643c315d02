"""The Python API (openvocab.Labeler) with the tiny random pipeline: typed results, conversions, and agreement
with the CLI's job on the same image."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

import openvocab
from openvocab.images import ImageLoadError, load_image
from openvocab.structures import TagSource


@pytest.fixture(scope="module")
def labeler():
    return openvocab.Labeler.from_config("tiny_random").setup()


@pytest.fixture()
def photo(shared_dir):
    return shared_dir / "images" / "demo4.jpg"  # 428x640


def test_label_agrees_with_the_cli_job(labeler, photo, tmp_path):
    steps = []
    one = labeler.label(str(photo), progress=lambda f, what: steps.append((f, what)))
    assert isinstance(one, openvocab.LabeledImage) and one.info.width == 428 and one.info.height == 640
    assert len(one) == len(one.regions) > 0 and one.tags and all(t.boxable is not None for t in one.tags)
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and "segmenting" in [w for _, w in steps]

    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(photo, d / photo.name)
    summary = labeler.label_folder(str(d), tmp_path / "out", progress=False)
    assert (summary.labeled, summary.failed) == (1, [])
    (line,) = [json.loads(l) for l in (tmp_path / "out" / "labels.jsonl").read_text().splitlines()]
    mine = one.to_dict()
    for key in ("tags", "width", "height"):
        assert mine[key] == line[key]
    assert [x["label"] for x in mine["detections"]] == [x["label"] for x in line["detections"]]
    np.testing.assert_allclose([x["box"] for x in mine["detections"]], [x["box"] for x in line["detections"]],
                               atol=1e-3)
    assert [x["mask"] for x in mine["detections"]] == [x["mask"] for x in line["detections"]]


def test_inputs_conversions_and_vocabulary(labeler, photo, tmp_path):
    pixels, _ = load_image(str(photo))
    results = labeler.label([pixels, Image.open(photo)], vocabulary="man, horse")
    assert [type(r) for r in results] == [openvocab.LabeledImage] * 2
    a, b = results
    assert a.classes == ("man", "horse")
    assert {t.name for t in a.tags} == {"man", "horse"} and all(t.source == TagSource.USER for t in a.tags)
    assert set(a.detections.labels) <= {"man", "horse"} and len(a) > 0
    np.testing.assert_array_equal(a.detections.boxes, b.detections.boxes)  # same pixels, same boxes

    coco_file = tmp_path / "one.json"
    coco_file.write_text(json.dumps(a.to_coco()))
    coco = COCO(str(coco_file))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["man", "horse"]
    sv = a.to_supervision()
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(sv) == len(anns) == len(a)
    np.testing.assert_allclose(sv.xyxy, a.detections.boxes)
    assert list(sv.data["class_name"]) == list(a.detections.labels)
    assert [c - 1 for c in (x["category_id"] for x in anns)] == list(sv.class_id)
    assert sv.mask.shape == (len(a), 640, 428) and sv.mask.dtype == bool
    for k, ann in enumerate(anns):
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), sv.mask[k])
        assert sv.mask[k].sum() == mask_utils.area(a.regions.masks[k])

    picture = a.render()
    assert picture.size == (428, 640)
    assert np.abs(np.asarray(picture).astype(int) - pixels).sum() > 0  # something was drawn
    saved = a.save(tmp_path / "saved", formats=("coco", "labelme", "yolo"))
    assert saved["coco"] == [tmp_path / "saved" / "coco.json"]
    assert [p.name for p in saved["yolo"]] == ["data.yaml", "image_0.txt"]
    assert len((tmp_path / "saved" / "yolo" / "labels" / "image_0.txt").read_text().splitlines()) == len(a)


def test_free_text_grounding(labeler, photo):
    found = labeler.detect_text(str(photo), "the man in a red shirt")
    assert len(found) > 0 and found.regions is not None and len(found.regions) == len(found)
    words = "the man in a red shirt".split()
    assert all(set(label.split()) <= set(words) for label in found.detections.labels)
    boxes_only = labeler.detect_text(str(photo), "the man in a red shirt", segment=False)
    assert boxes_only.regions is None
    np.testing.assert_array_equal(boxes_only.detections.boxes, found.detections.boxes)


def test_bad_inputs_are_named(labeler, tmp_path):
    with pytest.raises(ImageLoadError, match="missing.jpg"):
        labeler.label(str(tmp_path / "missing.jpg"))
    with pytest.raises(ValueError, match="RGB uint8"):
        labeler.label(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="expected a file path"):
        labeler.label(42)
    with pytest.raises(openvocab.config.UserError, match="nope"):
        openvocab.Labeler.from_config("nope")
