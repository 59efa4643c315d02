"""Every input the user named is labeled or listed with the true reason: names that are not UTF-8, unreadable
and symlinked folders (loops too), very thin images."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvocab.cli import main
from openvocab.inputs import expand_inputs

PLUGINS = Path(__file__).parent / "plugins"
TOY = str(PLUGINS / "toy_pipeline.py")


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))


def _png(path, value=200, size=(20, 30)):
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path, format="PNG")
    return path


def test_names_that_are_not_utf8_are_labeled_written_and_resumed(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    raw = os.fsencode(str(d)) + b"/caf\xe9 \xff.png"  # Latin-1 bytes: no UTF-8 decoding exists
    name = os.fsdecode(raw)
    _png(name)
    _png(d / "plain.png", value=20)
    out = tmp_path / "out"
    args = ["label", str(d), "--config", TOY, "--out", str(out), "--formats", "coco,jsonl,yolo,labelme", "--vis",
            "--no-progress"]
    assert main(args) == 0
    coco_text = (out / "coco.json").read_bytes().decode("utf-8")  # every output is valid UTF-8
    files = [i["file_name"] for i in json.loads(coco_text)["images"]]
    # relative to the image root (the inputs' folder), round trip to the same bytes
    assert os.fsencode(str(d / files[0])) == raw and files[1] == "plain.png"
    line = (out / "labels.jsonl").read_bytes().decode("utf-8").splitlines()[0]
    assert os.fsencode(json.loads(line)["file"]) == raw
    stem = os.fsdecode(b"caf\xe9 \xff")
    assert len(list((out / "yolo" / "labels").glob(f"*/{stem}.txt"))) == 1 and (out / "vis" / f"{stem}.jpg").is_file()
    labelme = json.loads((out / "labelme" / f"{stem}.json").read_bytes().decode("utf-8"))
    assert os.fsencode(os.path.normpath(out / "labelme" / labelme["imagePath"])) == raw
    assert main(args + ["--resume"]) == 0  # and resuming such a job works


def test_symlinked_folders_are_followed_once_and_loops_stop(tmp_path):
    d = tmp_path / "imgs"
    (d / "real").mkdir(parents=True)
    _png(d / "real" / "a.png")
    other = tmp_path / "elsewhere"
    other.mkdir()
    _png(other / "b.png")
    (d / "linked").symlink_to(other, target_is_directory=True)
    (d / "real" / "loop").symlink_to(d, target_is_directory=True)  # a cycle back to the top
    files, problems = expand_inputs([str(d)])
    assert sorted(Path(f).name for f in files) == ["a.png", "b.png"] and problems == []
    out = tmp_path / "out"
    assert main(["label", str(d), "--config", TOY, "--out", str(out), "--no-progress"]) == 0
    assert len(json.loads((out / "coco.json").read_text())["images"]) == 2


@pytest.mark.parametrize("how", ["chmod", "refused"])
def test_unreadable_folders_are_reported_not_skipped(tmp_path, monkeypatch, how):
    d = tmp_path / "imgs"
    (d / "locked").mkdir(parents=True)
    _png(d / "ok.png")
    _png(d / "locked" / "hidden.png")
    top = tmp_path / "top_locked"
    top.mkdir()
    locked = [d / "locked", top]
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root reads every folder: the 'refused' case covers it")
        for p in locked:
            p.chmod(0)
    else:  # as root, the kernel never refuses: the folder listing is made to refuse as it would
        real = os.scandir

        def scandir(path="."):
            if isinstance(path, (str, os.PathLike)) and os.fspath(path) in {str(p) for p in locked}:
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        out = tmp_path / "out"
        assert main(["label", str(d), str(top), "--config", TOY, "--out", str(out), "--no-progress"]) == 1
    finally:
        for p in locked:
            p.chmod(0o755)
    failures = {Path(f["file"]).name: f["error"] for f in map(json.loads, (out / "failures.jsonl").open())}
    assert failures == {"locked": "cannot read folder: permission denied",
                        "top_locked": "cannot read folder: permission denied"}
    assert [Path(i["file_name"]).name for i in json.loads((out / "coco.json").read_text())["images"]] == ["ok.png"]


@pytest.mark.parametrize("size", [(1, 5000), (5000, 1), (2, 9000)])
def test_very_thin_images_go_through_every_stage(tmp_path, size):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(d / "thin.png")
    out = tmp_path / "out"
    for cfg in ("tiny_random", "sam"):
        if cfg == "sam":
            cfg_file = tmp_path / "sam.py"
            cfg_file.write_text(_sam_config())
            cfg = str(cfg_file)
        rc = main(["label", str(d), "--config", cfg, "--out", str(out / Path(cfg).stem), "--no-progress",
                   "--formats", "coco"])
        assert rc == 0
        coco = json.loads((out / Path(cfg).stem / "coco.json").read_text())
        assert (coco["images"][0]["height"], coco["images"][0]["width"]) == size
        for a in coco["annotations"]:
            assert a["segmentation"]["size"] == list(size)


def _sam_config() -> str:
    from openvocab.cli import resolve_config

    text = resolve_config("tiny_random").read_text()
    start = text.index("mask_head = dict(")
    return (text[:start].replace("'./_base_/runtime.py'", repr(str(resolve_config("_base_/runtime.py"))))
            + "mask_head = dict(type='SAMMaskHead', variant='tiny', checkpoint=None, seed=0)\n")
