"""End-to-end: the CLI labels folders with the stand-alone toy plugin pipeline (fast, deterministic)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from job_record import recorded_count
from openvocab.cli import main

PLUGINS = Path(__file__).parent / "plugins"
TOY = str(PLUGINS / "toy_pipeline.py")


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), str(Path(__file__).parents[1])]))


def _folder(tmp_path, n=4, size=(48, 64)):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(n):
        v = 220 if i % 2 == 0 else 20
        Image.fromarray(np.full((*size, 3), v, np.uint8)).save(d / f"im{i:02d}.png")
    return d


def test_label_folder_all_formats(tmp_path, capsys):
    d = _folder(tmp_path)
    out = tmp_path / "out"
    rc = main(["label", str(d), "--config", TOY, "--out", str(out), "--formats", "coco,jsonl,yolo,labelme",
               "--vis", "--no-progress"])
    assert rc == 0
    coco = COCO(str(out / "coco.json"))
    assert len(coco.getImgIds()) == 4
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["box"]
    assert len(coco.getAnnIds()) == 2  # one box on each bright image
    lines = (out / "labels.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[1])["tags"][0]["name"] == "dark"
    assert (out / "failures.jsonl").read_text() == ""
    assert len(list((out / "vis").glob("*.jpg"))) == 4
    assert len(list((out / "labelme").glob("*.json"))) == 4
    assert (out / "yolo" / "data.yaml").is_file()


def test_bad_inputs_are_listed_and_the_rest_labeled(tmp_path):
    from bad_images import make_bad_image_folder

    d = tmp_path / "mixed"
    expected = make_bad_image_folder(d)
    out = tmp_path / "out"
    rc = main(["label", str(d), str(tmp_path / "does_not_exist.jpg"), "--config", TOY, "--out", str(out),
               "--no-progress"])
    assert rc == 1
    failures = [json.loads(l) for l in (out / "failures.jsonl").read_text().splitlines()]
    failed = {Path(f["file"]).name for f in failures}
    assert all(f["error"] for f in failures)
    assert failed == {n for n, ok in expected.items() if not ok} | {"does_not_exist.jpg"}
    coco = json.loads((out / "coco.json").read_text())
    assert {Path(i["file_name"]).name for i in coco["images"]} == {n for n, ok in expected.items() if ok}


def test_missing_checkpoint_stops_at_once_with_one_message(tmp_path, capsys):
    cfg = tmp_path / "needs_weights.py"
    cfg.write_text(Path(TOY).read_text().replace("threshold=127.0", "threshold=127.0, checkpoint='toy_weights'"))
    d = _folder(tmp_path, n=1)
    out = tmp_path / "out"
    rc = main(["label", str(d), "--config", str(cfg), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "toy_tagger_weights.pth" in err and "--checkpoint-dir" in err and "Traceback" not in err
    assert not (out / "coco.json").exists()
    wdir = tmp_path / "weights"
    wdir.mkdir()
    (wdir / "toy_tagger_weights.pth").write_bytes(b"x")
    assert main(["label", str(d), "--config", str(cfg), "--out", str(out), "--no-progress",
                 "--checkpoint-dir", str(wdir)]) == 0


def test_resume_after_kill_9_holds_each_image_once(tmp_path):
    d = _folder(tmp_path, n=12, size=(24, 32))
    out = tmp_path / "out"
    cfg = tmp_path / "slow.py"
    cfg.write_text(Path(TOY).read_text().replace("threshold=127.0", "threshold=127.0, delay=0.4"))
    cmd = [sys.executable, "-m", "openvocab.cli", "label", str(d), "--config", str(cfg), "--out", str(out),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and recorded_count(out) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = recorded_count(out)
    assert 3 <= done_before < 12
    rc = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr
    coco = json.loads((out / "coco.json").read_text())
    names = [Path(i["file_name"]).name for i in coco["images"]]
    assert sorted(names) == [f"im{i:02d}.png" for i in range(12)]
    assert len({i["id"] for i in coco["images"]}) == 12
    lines = (out / "labels.jsonl").read_text().splitlines()
    assert sorted(json.loads(l)["file"] for l in lines) == sorted(str(p) for p in d.glob("*.png"))
    assert f"({done_before} already done" in rc.stderr


def test_tag_and_detect_commands(tmp_path, capsys):
    d = _folder(tmp_path, n=2)
    assert main(["tag", str(d / "im00.png"), "--config", TOY, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in row["tags"]] == ["box", "bright"]
    assert main(["detect", "the man in a red shirt", str(d / "im01.png"), "--config", TOY, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["detections"][0]["phrase"] == "the man in a red shirt"
    assert row["detections"][0]["box"] == [0, 0, 64, 48]


def test_help_and_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["label", "--help"])
    assert e.value.code == 0
    assert "--resume" in capsys.readouterr().out
    assert main(["label", str(tmp_path), "--config", TOY, "--out", str(tmp_path / "o"), "--formats", "coco,pdf"]) == 2
    assert "pdf" in capsys.readouterr().err
    assert main(["label", str(tmp_path), "--config", "no_such_config", "--out", str(tmp_path / "o")]) == 2
    assert "no_such_config" in capsys.readouterr().err


def test_tag_text_marks_source_and_chinese_name():
    from openvocab.commands import _tag_text
    from openvocab.structures import Tag, TagSource

    assert _tag_text(Tag("dog", 0.912, name_zh="狗")) == "dog/狗 (0.91)"
    assert _tag_text(Tag("snow leopard", 0.62, source=TagSource.OPEN_SET)) == "snow leopard (0.62) [open-set]"
    assert _tag_text(Tag("cat", 1.0, source=TagSource.USER)) == "cat (1.00) [user]"
