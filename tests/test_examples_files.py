"""Example files (``openvocab label --examples FILE``): a COCO JSON or a folder of class crops read into typed examples;
a bad file fails at once, before any model loads or any output is made, with one line naming the file and the
entry."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvocab.cli import main
from openvocab.example_files import ExamplesError, read_examples
from openvocab.examples import Example, ExampleSet, image_digest
from openvocab.masks import encode_mask


def _picture(path: Path, h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb


@pytest.fixture
def coco(tmp_path):
    """A COCO examples file over two reference images in a sub-folder; returns (path, data, pixels by name)."""
    (tmp_path / "refs").mkdir()
    pixels = {"a.png": _picture(tmp_path / "refs" / "a.png"), "b.png": _picture(tmp_path / "refs" / "b.png", 40, 50, 1)}
    mask = np.zeros((40, 50), bool)
    mask[5:20, 10:30] = True
    data = {"images": [{"id": 1, "file_name": "refs/a.png", "width": 80, "height": 60},
                       {"id": "b", "file_name": "refs/b.png"}],
            "categories": [{"id": 7, "name": "part #4711"}, {"id": 3, "name": "defect"}, {"id": 9, "name": "unused"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 5, 20.5, 30]},
                            {"id": 2, "image_id": "b", "category_id": 7, "segmentation": encode_mask(mask)},
                            {"id": 3, "image_id": 1, "category_id": 7, "bbox": [0, 0, 80, 60],
                             "segmentation": [[0, 0, 40, 0, 40, 30, 0, 30]]},
                            {"id": 4, "image_id": "b", "category_id": 3, "bbox": [1, 1, 5, 5], "negative": True}]}
    path = tmp_path / "examples.json"
    path.write_text(json.dumps(data))
    return path, data, pixels


def test_coco_examples_are_read_with_their_images_boxes_masks_and_signs(coco):
    path, _, pixels = coco
    ex = read_examples(path)
    assert ex.classes == ("part #4711", "defect")  # the categories' order; 'unused' has no example
    assert [e.class_name for e in ex] == ["defect", "part #4711", "part #4711", "defect"]  # the file's order
    first, masked, polygon, negative = ex.examples
    np.testing.assert_array_equal(first.image, pixels["a.png"])
    np.testing.assert_allclose(first.box, [10, 5, 30.5, 35])
    assert first.mask is None and first.positive and "examples.json: annotation 0 (id 1)" in first.source
    np.testing.assert_allclose(masked.box, [10, 5, 30, 20])  # no bbox: the mask's extent
    assert masked.mask.sum() == 15 * 20
    assert polygon.mask[:30, :40].mean() > 0.9 and not polygon.mask[31:, 41:].any()
    assert not negative.positive and negative.image_id == masked.image_id == image_digest(pixels["b.png"])
    assert [e.class_name for e in ex.of_class("defect", positive=None)] == ["defect", "defect"]
    assert len(ex.in_image(image_digest(pixels["a.png"]))) == 2


def test_the_same_examples_are_the_same_set_wherever_they_are(coco, tmp_path):
    path, data, _ = coco
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "refs").mkdir()
    for name in ("a.png", "b.png"):
        (moved / "refs" / name).write_bytes((path.parent / "refs" / name).read_bytes())
    (moved / "copy.json").write_text(json.dumps(data))
    a, b = read_examples(path), read_examples(moved / "copy.json")
    assert a.key == b.key and a == b and a.fingerprint()["digest"] == b.fingerprint()["digest"]
    data["annotations"][0]["bbox"] = [10, 5, 20, 30]  # one box moved by half a pixel: another set
    (moved / "copy.json").write_text(json.dumps(data))
    assert read_examples(moved / "copy.json").key != a.key


def test_a_folder_of_crops_gives_one_class_per_folder(tmp_path):
    for cls, sizes in (("bolt", [(20, 30), (25, 25)]), ("nut", [(10, 12)])):
        (tmp_path / "crops" / cls).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            _picture(tmp_path / "crops" / cls / f"{i}.jpg", h, w, i)
    (tmp_path / "crops" / ".DS_Store").write_text("")  # hidden entries are not examples
    ex = read_examples(tmp_path / "crops")
    assert ex.classes == ("bolt", "nut") and len(ex) == 3
    for e in ex:  # a crop is its own box
        h, w = e.image.shape[:2]
        np.testing.assert_array_equal(e.box, [0, 0, w, h])
        assert e.crop().shape == e.image.shape


BAD_COCO = {
    "missing image": (lambda d: d["images"][1].update(file_name="refs/gone.png"),
                      "image 1 (id b): image 'refs/gone.png' not found"),
    "empty box": (lambda d: d["annotations"][0].update(bbox=[10, 5, 0, 30]), "annotation 0 (id 1): empty box"),
    "unknown class id": (lambda d: d["annotations"][2].update(category_id=99), "annotation 2 (id 3): unknown class id 99"),
    "box outside the image": (lambda d: d["annotations"][0].update(bbox=[70, 5, 20, 30]),
                              "annotation 0 (id 1): box [70, 5, 90, 35] lies outside the 80x60 image"),
    "unknown image id": (lambda d: d["annotations"][1].update(image_id=5), "annotation 1 (id 2): unknown image id 5"),
    "bad bbox": (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "annotation 0 (id 1): 'bbox' must be 4"),
    "mask of another size": (lambda d: d["annotations"][1].update(segmentation=encode_mask(np.ones((5, 5), bool))),
                             "annotation 1 (id 2): bad 'segmentation' (its size [5, 5] is not the image's [40, 50])"),
    "wrong size in the file": (lambda d: d["images"][0].update(width=81), "image 0 (id 1): the file says 81x60"),
    "class named twice": (lambda d: d["categories"][2].update(name="Defect"),
                          "category 2 (id 9): class name 'Defect' is used twice"),
    "negatives only": (lambda d: d["annotations"][3].update(category_id=9),
                       "annotation 3 (id 4): class 'unused' has negative examples only"),
    "not coco": (lambda d: d.pop("categories"), "not a COCO file"),
}


@pytest.mark.parametrize("case", sorted(BAD_COCO))
def test_a_bad_coco_file_names_the_file_and_the_entry(coco, case):
    path, data, _ = coco
    change, message = BAD_COCO[case]
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ExamplesError) as e:
        read_examples(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value) and "\n" not in str(e.value)


def test_a_bad_folder_names_the_file(tmp_path):
    root = tmp_path / "crops"
    (root / "bolt").mkdir(parents=True)
    _picture(root / "bolt" / "0.png")
    (root / "bolt" / "1.png").write_text("not a picture")
    with pytest.raises(ExamplesError, match=r"crops: bolt/1\.png: .*1\.png: not an image"):
        read_examples(root)
    (root / "bolt" / "1.png").unlink()
    (root / "loose.png").write_bytes((root / "bolt" / "0.png").read_bytes())
    with pytest.raises(ExamplesError, match=r"loose\.png: put each crop in a folder named by its class"):
        read_examples(root)
    (root / "loose.png").unlink()
    (root / "empty").mkdir()
    with pytest.raises(ExamplesError, match="empty: no crops in the class folder"):
        read_examples(root)
    with pytest.raises(ExamplesError, match="no such examples file or folder"):
        read_examples(tmp_path / "nowhere.json")


@pytest.mark.parametrize("case", ["missing image", "empty box", "unknown class id", "box outside the image"])
def test_the_job_stops_before_anything_is_labelled(coco, case, tmp_path, capsys):
    path, data, _ = coco
    change, message = BAD_COCO[case]
    change(data)
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    rc = main(["label", str(Path(__file__).parents[1] / "demo" / "images"), "--out", str(out), "--config",
               "tiny_examples", "--examples", str(path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()  # no output folder, no record, no label
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"openvocab label: {path}") and message in lines[0], err
    assert "Traceback" not in err


def test_examples_are_checked_where_they_are_made():
    image = np.zeros((10, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="box 2: empty box"):
        ExampleSet.from_boxes(image, [[1, 1, 5, 5], [3, 3, 3, 8]], ["a", "a"])
    with pytest.raises(ValueError, match="class 'b' has no positive example"):
        ExampleSet.from_boxes(image, [[1, 1, 5, 5], [2, 2, 6, 6]], ["a", "b"], positive=[True, False])
    with pytest.raises(ValueError, match="RGB uint8"):
        Example(class_name="a", image=np.zeros((4, 4), np.uint8), box=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="empty mask"):
        Example(class_name="a", image=image, box=[0, 0, 1, 1], mask=np.zeros((10, 20), bool))
    one = ExampleSet.from_boxes(image, [[1, 1, 5.5, 5]], ["  part   A "])
    assert one.classes == ("part A",) and one.examples[0].pixel_box() == (1, 1, 6, 5)
