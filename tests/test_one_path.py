"""One path through the pipeline: a config with a third-party segmenter and stuff segmenter gives the same instances
through ``openvocab label`` (the engine), the Python API (``Labeler.label``) and the demo's handlers, because each
runs batches through the pipeline's steps."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvocab import Labeler
from openvocab.cli import main
from openvocab.masks import decode_mask

PLUGINS = Path(__file__).parent / "plugins"

CONFIG = """
custom_imports = dict(imports=['toy_plugin', 'third_party'], allow_failed_imports=False)
tagger = dict(type='BrightnessTagger', threshold=127.0)
boxable_filter = dict(type='ListBoxableFilter', not_boxable=['bright'])
segmenter = dict(type='CornerSegmenter')
stuff_segmenter = dict(type='TopHalfSegmenter')
"""


@pytest.fixture(autouse=True)
def _plugins(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))


@pytest.fixture
def setup(tmp_path):
    cfg = tmp_path / "segmenters.py"
    cfg.write_text(CONFIG)
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.full((40, 64, 3), 210, np.uint8)).save(d / "bright.png")
    Image.fromarray(np.full((30, 20, 3), 15, np.uint8)).save(d / "dark.png")
    return cfg, d


def _instances(labels, boxes, scores, masks) -> list[tuple]:
    return [(label, tuple(np.round(np.asarray(box, float), 3)), round(float(score), 5), decode_mask(mask).tobytes())
            for label, box, score, mask in zip(labels, boxes, scores, masks)]


def _from_api(labeled) -> list[tuple]:
    return _instances(labeled.detections.labels, labeled.detections.boxes, labeled.detections.scores,
                      labeled.regions.masks)


def test_cli_api_and_demo_give_the_same_segmenter_instances(setup, tmp_path):
    cfg, d = setup
    out = tmp_path / "out"
    assert main(["label", str(d), "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    written = {}
    for line in (out / "labels.jsonl").read_text().splitlines():
        rec = json.loads(line)
        dets = rec["detections"]
        written[Path(rec["file"]).name] = _instances([x["label"] for x in dets], [x["box"] for x in dets],
                                                     [x["score"] for x in dets], [x["mask"] for x in dets])
    assert [x[0] for x in written["bright.png"]] == ["box", "bright"]  # segmenter, then stuff segmenter
    assert [x[0] for x in written["dark.png"]] == ["dark"]

    labeler = Labeler.from_config(str(cfg))
    steps = []
    api = labeler.label([str(d / "bright.png"), str(d / "dark.png")], progress=lambda f, what: steps.append(what))
    assert {Path(r.info.file).name: _from_api(r) for r in api} == written
    assert steps[1:4] == ["tagging (1/2)", "detecting (1/2)", "segmenting (1/2)"]  # reported between the steps

    import importlib

    logic = importlib.import_module("openvocab.demo.logic")  # the demo's handlers, without the page
    menu = logic.ConfigMenu(str(cfg))
    settings = logic.Settings(config=menu.path(str(cfg)), stages=("tagger", "stuff masks"))
    cache = logic.LabelerCache()
    for name in ("bright.png", "dark.png"):
        shown = logic.run_label(cache, str(d / name), settings, "", out_root=tmp_path)
        assert "Error" not in shown.status, shown.status
        rows = [(r[1], r[2]) for r in shown.regions]
        assert rows == [(x[0], round(x[2], 3)) for x in written[name]]
        coco = json.loads(Path(shown.files[0]).read_text())
        got = [(c["name"]) for a in coco["annotations"] for c in coco["categories"] if c["id"] == a["category_id"]]
        assert got == [x[0] for x in written[name]]


def test_a_per_call_vocabulary_goes_through_the_same_steps(setup):
    cfg, d = setup
    labeler = Labeler.from_config(str(cfg))
    r = labeler.label(str(d / "bright.png"), vocabulary="widget, gadget")
    assert [t.name for t in r.tags] == ["widget", "gadget"]  # the tagger is not used for this call
    assert list(r.detections.labels) == ["widget", "gadget"] and all(type(x) is str for x in r.detections.labels)


def test_labels_are_plain_strings_whatever_a_stage_hands():
    from openvocab.structures import Detections

    d = Detections(boxes=[[0, 0, 1, 1], [1, 1, 2, 2]], scores=[0.5, 0.6], labels=np.array(["circle", "square"]))
    assert d.labels == ("circle", "square") and all(type(x) is str for x in d.labels + d.phrases)
    assert repr(list(d.labels)) == "['circle', 'square']"
