"""Click to segment: the demo's clicks become point and box prompts for the config's mask head (PSALM's here, as
``Labeler.segment_prompts``), and what a client sends as clicks is checked as data."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from openvocab import Labeler
from openvocab.masks import decode_mask

ROOT = Path(__file__).resolve().parents[1]
IMAGE = str(ROOT / "demo" / "images" / "shapes_2.jpg")
logic = importlib.import_module("openvocab.demo.logic")


def test_clicks_make_points_and_boxes():
    prompts = logic.add_click([], "point", 10, 20)
    prompts = logic.add_click(prompts, "box", 300, 200)
    assert prompts == [("point", 10.0, 20.0), ("corner", 300.0, 200.0)]
    prompts = logic.add_click(prompts, "box", 100.5, 50)  # the second corner closes the box, in any order
    assert prompts == [("point", 10.0, 20.0), ("box", 100.5, 50.0, 300.0, 200.0)]
    for bad in ((None, 3), ("x", 3), (-1, 5), (1e9, 5)):
        with pytest.raises(logic.UserError):
            logic.add_click([], "point", *bad)
    with pytest.raises(logic.UserError, match="mode"):
        logic.add_click([], "lasso", 1, 1)
    with pytest.raises(logic.UserError, match="at most"):
        logic.add_click([("point", 1.0, 1.0)] * logic.MAX_PROMPTS, "point", 1, 1)


def test_psalm_segments_the_clicked_point_and_the_drawn_box():
    menu = logic.ConfigMenu()
    settings = logic.Settings(config=menu.path("tiny_psalm"))
    prompts = [("box", 40.0, 60.0, 300.0, 260.0), ("point", 420.0, 200.0), ("corner", 5.0, 5.0)]
    overlay, rows, status = logic.run_prompts(logic.LabelerCache(), IMAGE, settings, prompts)
    assert "2 masks (1 boxes, 1 points)" in status, status
    assert [r[1] for r in rows] == ["prompt 1", "prompt 2"] and overlay.size == (640, 480)
    assert rows[0][3] == "40.0, 60.0, 300.0, 260.0"  # a box prompt keeps its box
    # the demo shows what the Python API gives for the same prompts
    labeler = Labeler.from_config("tiny_psalm")
    boxed = labeler.segment_prompts(IMAGE, boxes=np.array([[40, 60, 300, 260]], np.float32))
    pointed = labeler.segment_prompts(IMAGE, points=np.array([[[420, 200]]], np.float32),
                                      point_labels=np.array([[1]]))
    assert [int(r[4]) for r in rows] == [int(decode_mask(boxed.regions.masks[0]).sum()),
                                         int(decode_mask(pointed.regions.masks[0]).sum())]
    ys, xs = np.nonzero(decode_mask(pointed.regions.masks[0]))
    assert pointed.detections.boxes[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_a_config_without_a_mask_head_says_so():
    menu = logic.ConfigMenu()
    overlay, rows, status = logic.run_prompts(logic.LabelerCache(), IMAGE, logic.Settings(config=menu.path("psalm")),
                                              [("point", 1.0, 1.0)])
    assert overlay is None and "no mask head" in status


def test_free_text_grounding_with_psalm_gives_the_referred_mask_in_the_api_and_the_demo():
    found = Labeler.from_config("tiny_psalm").detect_text(IMAGE, "the red circle on the left")
    assert len(found) == 1 and found.regions is not None  # PSALM's own mask of the referred object
    mask = decode_mask(found.regions.masks[0])
    ys, xs = np.nonzero(mask)
    assert found.detections.boxes[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert found.detections.labels == ("the red circle on the left",)
    menu = logic.ConfigMenu()
    overlay, rows, status = logic.run_grounding(logic.LabelerCache(), IMAGE, "the red circle on the left",
                                                logic.Settings(config=menu.path("tiny_psalm")))
    assert "1 boxes" in status and rows[0][4] == int(mask.sum())  # the demo's table shows the mask's area
