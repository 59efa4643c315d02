"""The demo's "Find all like this" tab without the page (``demo/examples_logic.py``): boxes drawn by two clicks become
labelled examples, and the config's exemplar stage finds their like in the same image and in more uploads
(``tiny_examples``: tiny random models, offline)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from checkout_demo import ROOT, use_checkout_demo

use_checkout_demo()
from openvocab.demo import examples_logic as ex  # noqa: E402
from openvocab.demo import logic  # noqa: E402

PICTURES = sorted((ROOT / "demo" / "images").glob("*.jpg"))


def _draw(drawing, *clicks):
    message = ""
    for xy, label, negative in clicks:
        drawing, message = ex.click(drawing, xy, label, negative)
    return drawing, message


def test_two_clicks_draw_a_labelled_box():
    drawing = ex.open_image(str(PICTURES[0]))
    assert drawing.image.shape == (480, 640, 3) and drawing.rows() == []
    drawing, message = ex.click(drawing, [300, 200], "star", False)
    assert drawing.corner == (300, 200) and "opposite corner" in message and not drawing.boxes
    drawing, message = ex.click(drawing, [120.5, 9999], "  big   star ", False)  # any two corners; clipped
    assert drawing.boxes == ((120.5, 200.0, 300.0, 480.0, "big star", True),) and drawing.corner is None
    assert message == "1 box drawn."
    drawing, _ = _draw(drawing, ([10, 10], "star", True), ([60, 50], "star", True))
    assert drawing.rows()[1] == [2, "star", "10, 10, 60, 50", "not like this"]
    with pytest.raises(logic.UserError, match="class 'star' has no positive example"):
        drawing.examples()
    drawing, _ = _draw(drawing, ([200, 10], "star", False), ([260, 60], "star", False))
    examples = drawing.examples()
    assert examples.classes == ("big star", "star") and [e.positive for e in examples] == [True, False, True]
    picture = np.asarray(drawing.picture())
    assert picture.shape == drawing.image.shape and (picture != drawing.image).any()  # the boxes are drawn


@pytest.mark.parametrize("xy, label, message", [
    ("10,20", "a", "a click is two numbers"), ([1, float("nan")], "a", "a click is two numbers"),
    ([50, 50], "", "type a label"), ([50, 50], "x" * 101, "type a label"), ([11, 11], "a", "too small")])
def test_bad_clicks_and_labels_are_refused(xy, label, message):
    drawing, _ = ex.click(ex.open_image(str(PICTURES[0])), [10, 10], "a", False)
    after, status = ex.click(drawing, xy, label, False)
    assert message in status and status.startswith("**Error:**") and not after.boxes
    assert "upload an image" in ex.click(ex.Drawing(), [1, 1], "a", False)[1]


def test_find_all_like_the_drawn_boxes_in_the_image_and_more_uploads(tmp_path):
    settings = logic.Settings(config=str(ROOT / "configs" / "tiny_examples.py"))
    drawing, _ = _draw(ex.open_image(str(PICTURES[0])), ([114, 135], "star", False), ([289, 303], "star", False),
                       ([205, 140], "triangle", False), ([313, 226], "triangle", False))
    labelers = ex.ExampleLabelers()
    steps = []
    out = ex.find_all(labelers, drawing, [str(p) for p in PICTURES[1:3]], settings,
                      progress=lambda f, what: steps.append(what), out_root=tmp_path)
    assert out.status.endswith("like the 2 drawn in 3 images.") and len(out.gallery) == 3, out.status
    assert [caption.split(":")[0] for _, caption in out.gallery] == [p.name for p in PICTURES[:3]]
    assert {row[1] for row in out.regions} <= {"star", "triangle"} and out.regions
    coco = COCO(str(out.coco))
    assert [im["file_name"] for im in coco.loadImgs(coco.getImgIds())] == [p.name for p in PICTURES[:3]]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["star", "triangle"]
    assert len(coco.getAnnIds()) == len(out.regions) == int(out.status.split()[0])
    assert any("detecting" in s for s in steps)
    pipe = labelers.get(settings).pipeline  # the examples' classes only: no tagger, no text detector
    assert pipe.tagger is None and pipe.detector is None and pipe.exemplar_detector is not None
    assert json.loads(out.coco.read_text())["annotations"][0]["segmentation"]  # masks from the tiny TAP


def test_find_all_says_what_is_missing(tmp_path):
    drawing = ex.open_image(str(PICTURES[0]))
    settings = logic.Settings(config=str(ROOT / "configs" / "tiny_examples.py"))
    assert "draw at least one box" in ex.find_all(ex.ExampleLabelers(), drawing, [], settings).status
    drawing, _ = _draw(drawing, ([10, 10], "a", False), ([60, 60], "a", False))
    plain = logic.Settings(config=str(ROOT / "configs" / "tiny_random.py"))
    assert "has no exemplar detector" in ex.find_all(ex.ExampleLabelers(), drawing, [], plain).status
    too_many = [str(PICTURES[1])] * ex.MAX_IMAGES
    assert "at most 64 images" in ex.find_all(ex.ExampleLabelers(), drawing, too_many, settings).status
