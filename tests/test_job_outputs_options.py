"""The job's image root (--image-root, kept by --resume) and writer options from configs and --cfg-options
(toy plugin pipeline)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from job_record import recorded_count
from openvocab.cli import main

PLUGINS = Path(__file__).parent / "plugins"
TOY = str(PLUGINS / "toy_pipeline.py")


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))


def _photos(root: Path) -> Path:
    d = root / "data" / "photos"
    for i, sub in enumerate(("x", "x", "y/z")):
        (d / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((40, 60, 3), 200 if i else 20, np.uint8)).save(d / sub / f"p{i}.png")
    return d


def _label(inputs, out, *extra) -> int:
    return main(["label", *map(str, inputs), "--config", TOY, "--out", str(out), "--no-progress", *extra])


def _file_names(out: Path) -> list[str]:
    return [im["file_name"] for im in json.loads((out / "coco.json").read_text())["images"]]


def test_image_root_default_explicit_and_kept_by_resume(tmp_path, monkeypatch):
    d = _photos(tmp_path)
    monkeypatch.chdir(tmp_path)
    # default: the deepest folder holding every input, whatever the inputs' spelling
    assert _label(["data/photos/x", str(d / "y")], tmp_path / "a") == 0
    assert _file_names(tmp_path / "a") == ["x/p0.png", "x/p1.png", "y/z/p2.png"]
    # --image-root: names relative to it; a resume without it keeps it, though its inputs alone would give x/
    assert _label([d / "x"], tmp_path / "b", "--image-root", "data") == 0
    assert _file_names(tmp_path / "b") == ["photos/x/p0.png", "photos/x/p1.png"]
    assert _label([d / "x", d / "y"], tmp_path / "b", "--resume") == 0
    assert _file_names(tmp_path / "b") == ["photos/x/p0.png", "photos/x/p1.png", "photos/y/z/p2.png"]
    lines = [json.loads(s) for s in (tmp_path / "b" / "labels.jsonl").read_text().splitlines()]
    assert [s["file_name"] for s in lines] == _file_names(tmp_path / "b")
    assert lines[0]["file"] == str(d / "x" / "p0.png")  # the path as given stays in "file"
    # a resume with another root, or an input outside the root, is refused before any image is labeled
    before = recorded_count(tmp_path / "b")
    assert _label([d / "x"], tmp_path / "b", "--resume", "--image-root", str(d / "x")) == 2
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(outside / "q.png")
    assert _label([d / "x", outside], tmp_path / "b", "--resume") == 2
    assert _label([outside], tmp_path / "c", "--image-root", str(d)) == 2
    assert _label([d], tmp_path / "c", "--image-root", str(d / "missing")) == 2
    assert recorded_count(tmp_path / "b") == before and not (tmp_path / "c" / "coco.json").exists()


def test_image_root_errors_name_the_problem(tmp_path, capsys):
    d = _photos(tmp_path)
    outside = tmp_path / "q.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(outside)
    assert _label([d, outside], tmp_path / "o", "--image-root", str(d)) == 2
    err = capsys.readouterr().err
    assert f"1 input(s) are not under --image-root {d}: {outside}" in err and err.count("\n") == 1


def test_writer_options_from_config_and_cfg_options(tmp_path):
    d = _photos(tmp_path)
    cfg = tmp_path / "cfg.py"
    cfg.write_text(f"_base_ = {TOY!r}\nwriters = dict(yolo=dict(val_fraction=1.0), labelme=dict(polygons=False))\n")
    out = tmp_path / "o"
    assert main(["label", str(d), "--config", str(cfg), "--out", str(out), "--no-progress", "--formats",
                 "yolo,labelme,yolo-seg", "--cfg-options", "writers.yolo-seg.subdir=seg"]) == 0
    assert len(list((out / "yolo" / "labels" / "val").iterdir())) == 3  # val_fraction=1.0 from the config
    assert not any((out / "yolo" / "labels" / "train").iterdir())
    shapes = json.loads((out / "labelme" / "p1.json").read_text())["shapes"]
    assert shapes and {s["shape_type"] for s in shapes} == {"rectangle"}  # polygons=False from the config
    assert (out / "seg" / "data.yaml").is_file() and not (out / "yolo-seg").exists()  # from --cfg-options
    # --val-fraction wins over the config
    assert main(["label", str(d), "--config", str(cfg), "--out", str(tmp_path / "o2"), "--no-progress",
                 "--formats", "yolo", "--val-fraction", "0"]) == 0
    assert len(list((tmp_path / "o2" / "yolo" / "labels" / "train").iterdir())) == 3


@pytest.mark.parametrize("options, message", [
    (["writers.labelme.epsilon=-1"], "epsilon must be >= 0"),
    (["writers.labelme.no_such_option=1"], "no_such_option"),
    (["writers.yaml.subdir=x"], "unknown format(s) ['yaml']"),
])
def test_bad_writer_options_are_one_line_errors(tmp_path, capsys, options, message):
    d = _photos(tmp_path)
    assert main(["label", str(d), "--config", TOY, "--out", str(tmp_path / "o"), "--no-progress", "--formats",
                 "labelme", "--cfg-options", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
