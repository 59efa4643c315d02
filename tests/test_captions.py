"""Image captions through every face: the pipeline's caption step (guided by the tagger's tags, or by
``--caption-tags``), the caption parser's tags joining the image's before detection, every output format read back
by its consumer (pycocotools reads ``captions.json``), ``openvocab caption``, the Python API, the demo, the job
fingerprint, and ``openvocab eval --captions-pred/--captions-gt``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from openvocab import Labeler
from openvocab.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"
DEMO = ROOT / "demo" / "images"

GUIDED = """
custom_imports = dict(imports=['toy_plugin', 'third_party', 'tagging'], allow_failed_imports=False)
tagger = dict(type='BrightnessTagger', threshold=127.0)
boxable_filter = dict(type='ListBoxableFilter', not_boxable=['bright', 'dark', 'place'])
detector = dict(type='CentreBoxDetector')
mask_head = dict(type='BoxMaskHead')
captioner = dict(type='GuidedCaptioner')
caption_parser = dict(type='SpacyCaptionParser', tag_list=['dog', 'cat', 'place'])
"""


@pytest.fixture(autouse=True)
def _plugins(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))


@pytest.fixture
def pics(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.full((40, 60, 3), 220, np.uint8)).save(d / "bright.png")
    Image.fromarray(np.full((30, 50, 3), 20, np.uint8)).save(d / "dark.png")
    return d


def _config(tmp_path: Path, text: str) -> str:
    cfg = tmp_path / "guided.py"
    cfg.write_text(text)
    return str(cfg)


def test_the_caption_step_is_guided_by_the_tags_and_its_parser_adds_tags(tmp_path, pics):
    labeler = Labeler.from_config(_config(tmp_path, GUIDED))
    bright, dark = labeler.label([str(pics / "bright.png"), str(pics / "dark.png")])
    assert bright.caption == "a dog by box and bright in a bright place"  # the tagger's tags guide it
    assert dark.caption == "a dog by dark in a dark place"
    # the parser found 'dog' and 'place' in the captions: they join the image's tags (source caption)
    added = {t.name: t for t in bright.tags if t.source.value == "caption"}
    assert set(added) == {"dog", "place"} and added["dog"].boxable and not added["place"].boxable
    assert "dog" in bright.detections.labels and "place" not in bright.detections.labels  # detected like any tag
    guided = Labeler.from_config(_config(tmp_path, GUIDED + "caption_tags = ['cat', 'dog']\n"))
    assert guided.label(str(pics / "dark.png")).caption == "a dog by cat and dog in a dark place"


def test_a_vocabulary_job_lets_the_captioner_use_its_own_tags(tmp_path, pics):
    labeler = Labeler.from_config(_config(tmp_path, GUIDED), vocabulary="widget")
    r = labeler.label(str(pics / "bright.png"))
    assert r.caption == "a dog by thing in a bright place"  # the vocabulary names classes, not the picture


def test_captions_in_every_format_and_their_consumers(tmp_path, pics):
    cfg = _config(tmp_path, GUIDED)
    out = tmp_path / "out"
    assert main(["label", str(pics), "--config", cfg, "--out", str(out), "--no-progress", "--vis",
                 "--formats", "coco,jsonl,labelstudio,fiftyone,labelme,yolo"]) == 0
    expected = {"bright.png": "a dog by box and bright in a bright place",
                "dark.png": "a dog by dark in a dark place"}
    lines = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    assert {Path(x["file"]).name: x["caption"] for x in lines} == expected
    coco = COCO(str(out / "captions.json"))  # pycocotools reads the COCO captions file
    got = {coco.imgs[a["image_id"]]["file_name"]: a["caption"] for a in coco.loadAnns(coco.getAnnIds())}
    assert got == expected
    boxes = json.loads((out / "coco.json").read_text())  # the same image ids as coco.json
    assert {im["file_name"]: im["id"] for im in boxes["images"]} == {im["file_name"]: im["id"]
                                                                       for im in coco.dataset["images"]}
    assert {im["file_name"]: im["caption"] for im in boxes["images"]} == expected
    fo = json.loads((out / "fiftyone" / "labels.json").read_text())
    assert {im["file_name"]: im["caption"] for im in fo["images"]} == expected
    tasks = json.loads((out / "labelstudio" / "tasks.json").read_text())
    areas = [r for t in tasks for r in t["predictions"][0]["result"] if r["type"] == "textarea"]
    assert sorted(a["value"]["text"][0] for a in areas) == sorted(expected.values())
    config = (out / "labelstudio" / "label_config.xml").read_text()
    assert '<TextArea name="caption" toName="image"' in config
    assert (out / "vis" / "bright.jpg").is_file()


def test_the_overlay_draws_the_caption_along_the_bottom():
    from dataclasses import replace

    from openvocab.structures import ImageInfo, ImageResult
    from openvocab.writers.overlay import OverlayWriter

    image = np.full((200, 300, 3), 230, np.uint8)
    plain = ImageResult(image=ImageInfo("x.png", 300, 200))
    writer = OverlayWriter(max_tags=0)
    without = np.asarray(writer.render(plain, image)).astype(int)
    assert writer.last_caption is None
    words = "a long caption that needs more than one line across this small picture to be read in full"
    with_caption = np.asarray(writer.render(replace(plain, caption=words), image)).astype(int)
    x1, y1, x2, y2 = writer.last_caption
    assert (x1, x2, y2) == (0, 300, 200) and 120 < y1 < 190  # a strip along the bottom, wrapped onto lines
    changed = np.abs(with_caption - without).sum(axis=2) > 0
    assert changed[int(y1):].mean() > 0.5 and not changed[: int(y1)].any()


def test_caption_tags_on_the_command_line_and_the_fingerprint(tmp_path, pics, capsys):
    cfg = _config(tmp_path, GUIDED)
    out = tmp_path / "out"
    assert main(["label", str(pics), "--config", cfg, "--out", str(out), "--no-progress",
                 "--caption-tags", "cat, dog"]) == 0
    lines = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    assert {x["caption"] for x in lines} == {"a dog by cat and dog in a bright place",
                                            "a dog by cat and dog in a dark place"}
    capsys.readouterr()
    assert main(["label", str(pics), "--config", cfg, "--out", str(out), "--no-progress", "--resume",
                 "--caption-tags", "cat"]) == 2
    assert "caption_tags" in capsys.readouterr().err  # a resume with other caption tags is another job
    assert main(["caption", str(pics / "dark.png"), "--config", cfg, "--caption-tags", "dog", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["caption"] == "a dog by dog in a dark place"


def test_tag2text_as_tagger_and_captioner_is_one_model():
    from openvocab.build import build_pipeline
    from openvocab.config import load_config

    pipe = build_pipeline(load_config("tiny_tag2text_tagger"))
    assert pipe.captioner is pipe.tagger and pipe.stages == [pipe.tagger]


def test_full_pipeline_tag2text_on_tiny_weights_guides_by_the_ram_plus_tags(tmp_path):
    out = tmp_path / "out"
    image = DEMO / "shapes_1.jpg"
    assert main(["label", str(image), "--config", "tiny_tag2text", "--out", str(out), "--no-progress",
                 "--formats", "coco,jsonl"]) == 0
    (line,) = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    labeler = Labeler.from_config("tiny_tag2text")
    captioner = labeler.pipeline.captioner
    array = np.asarray(Image.open(image).convert("RGB"))
    tags = [t["name"] for t in line["tags"]]
    # the job's caption is Tag2Text's caption guided by the image's RAM++ tags, not by its own tags
    assert line["caption"] == captioner.caption([array], [tags])[0]
    assert line["caption"] != captioner.caption([array], None)[0]
    assert COCO(str(out / "captions.json")).loadAnns(1)[0]["caption"] == line["caption"]


def test_demo_status_shows_the_caption(tmp_path, pics):
    import importlib

    logic = importlib.import_module("openvocab.demo.logic")
    cfg = _config(tmp_path, GUIDED)
    menu = logic.ConfigMenu(cfg)
    shown = logic.run_label(logic.LabelerCache(), str(pics / "bright.png"), logic.Settings(config=menu.path(cfg)),
                            "", out_root=tmp_path)
    assert "Caption: *a dog by box and bright in a bright place*" in shown.status, shown.status


def test_eval_scores_captions_and_compares_runs(tmp_path, capsys):
    refs = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            "annotations": [{"image_id": 1, "id": 1, "caption": "a brown dog runs on the beach"},
                            {"image_id": 1, "id": 2, "caption": "a dog running on sand near the sea"},
                            {"image_id": 2, "id": 3, "caption": "a red car parked on a street"},
                            {"image_id": 2, "id": 4, "caption": "a red car is parked by the road"}]}
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    good = tmp_path / "good.jsonl"
    good.write_text('{"file": "/data/a.jpg", "caption": "A brown dog runs on the beach."}\n'
                    '{"file": "/data/b.jpg", "caption": "a red car parked on a street"}\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"file": "/data/a.jpg", "caption": "two cats sleep on a sofa"}\n'
                   '{"file": "/data/b.jpg", "caption": "a bowl of fruit"}\n')
    for name, pred in (("good", good), ("bad", bad)):
        assert main(["eval", "--captions-pred", str(pred), "--captions-gt", str(tmp_path / "refs.json"),
                     "--out", str(tmp_path / name)]) == 0
    good_m = json.loads((tmp_path / "good" / "metrics.json").read_text())["captions"]
    bad_m = json.loads((tmp_path / "bad" / "metrics.json").read_text())["captions"]
    assert good_m["BLEU-1"] == pytest.approx(1.0) and good_m["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert good_m["CIDEr"] > 2 * bad_m["CIDEr"] and bad_m["BLEU-4"] < 0.01
    assert good_m["counts"]["images"] == 2
    capsys.readouterr()
    assert main(["eval", "--compare", str(tmp_path / "good"), str(tmp_path / "bad")]) == 0
    table = capsys.readouterr().out
    assert "captions/CIDEr" in table and "captions/BLEU-4" in table
    assert main(["eval", "--captions-pred", str(good), "--out", str(tmp_path / "x")]) == 2
