"""The labeling engine as a user drives it: kill -9 and resume, relative paths, smaller input lists, a second job
on the same folder, resuming another job, and the output folder inside the inputs (toy plugin pipeline)."""
from __future__ import annotations

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

from job_record import recorded_count, recorded_results
from openvocab.cli import main

PLUGINS = Path(__file__).parent / "plugins"
TOY = str(PLUGINS / "toy_pipeline.py")
FORMATS = "coco,jsonl,yolo,labelme"


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), str(Path(__file__).parents[1])]))


def _folder(root: Path, n: int = 10) -> Path:
    d = root / "imgs"
    (d / "sub").mkdir(parents=True)
    for i in range(n):
        v = 200 if i % 3 else 20
        where = d / "sub" if i % 4 == 0 else d
        Image.fromarray(np.full((24 + i, 32, 3), v, np.uint8)).save(where / f"im{i:02d}.png")
    (d / "broken.png").write_bytes(b"not a png")
    return d


def _slow_config(tmp_path: Path, delay: float = 0.25) -> str:
    cfg = tmp_path / "slow.py"
    cfg.write_text(Path(TOY).read_text().replace("threshold=127.0", f"threshold=127.0, delay={delay}"))
    return str(cfg)


def _cmd(cfg, inputs, out, *extra):
    return [sys.executable, "-m", "openvocab.cli", "label", *map(str, inputs), "--config", cfg, "--out", str(out),
            "--formats", FORMATS, "--vis", "--no-progress", *extra]


def _run_killed(cmd, out, at_least, cwd=None):
    """Start ``cmd``, kill -9 it once ``at_least`` images are recorded; the record's size then."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    deadline = time.time() + 120
    while time.time() < deadline and recorded_count(out) < at_least and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return recorded_count(out)


def _outputs(out: Path) -> dict:
    """Every output file of a job, comparable across folders (the COCO creation time and the absolute YOLO
    path are the only fields that may differ)."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if p.is_dir() or rel.parts[0] == ".openvocab":
            continue
        data = p.read_bytes()
        if rel.name == "coco.json":
            coco = json.loads(data)
            coco["info"].pop("date_created")
            data = coco
        elif rel.name == "data.yaml":
            data = [line for line in data.decode().splitlines() if not line.startswith("path:")]
        files[str(rel)] = data
    return files


def test_kill_9_at_several_points_then_resume_equals_an_uninterrupted_run(tmp_path):
    d = _folder(tmp_path)
    cfg = _slow_config(tmp_path)
    assert main(["label", str(d), "--config", cfg, "--out", str(tmp_path / "ref"), "--formats", FORMATS, "--vis",
                 "--no-progress"]) == 1  # broken.png fails
    out = tmp_path / "out"
    first = _run_killed(_cmd(cfg, [d], out), out, 2)
    before = recorded_results(out)
    assert 2 <= first < 10 and len(before) == first
    second = _run_killed(_cmd(cfg, [d], out, "--resume", "--workers", "0"), out, first + 3)
    after = recorded_results(out)
    assert first < second < 10
    assert all(after[k] == v for k, v in before.items())  # a finished result is never lost or changed
    rc = subprocess.run(_cmd(cfg, [d], out, "--resume", "--batch-size", "3"), capture_output=True, text=True,
                        timeout=300)
    assert rc.returncode == 1, rc.stderr  # broken.png is still a failure
    assert f"({second} already done, 1 failed)" in rc.stderr
    assert _outputs(out) == _outputs(tmp_path / "ref")
    coco = json.loads((out / "coco.json").read_text())
    assert len(coco["images"]) == 10 and len({i["file_name"] for i in coco["images"]}) == 10
    failures = [json.loads(l) for l in (out / "failures.jsonl").read_text().splitlines()]
    assert [Path(f["file"]).name for f in failures] == ["broken.png"]


def test_resume_from_another_folder_with_relative_paths_and_a_smaller_list(tmp_path):
    d = _folder(tmp_path)
    cfg = _slow_config(tmp_path)
    out = tmp_path / "out"
    done = _run_killed(_cmd(cfg, [d.resolve()], out), out, 4)  # absolute paths first
    assert done >= 4
    # the same images typed relative to another working folder: nothing finished is redone
    rc = subprocess.run(_cmd(cfg, ["imgs"], out, "--resume"), cwd=tmp_path, capture_output=True, text=True,
                        timeout=300)
    assert rc.returncode == 1 and f"({done} already done, 1 failed)" in rc.stderr, rc.stderr
    subprocess.run(_cmd(cfg, ["imgs"], tmp_path / "ref"), cwd=tmp_path, capture_output=True, timeout=300)
    assert _outputs(out) == _outputs(tmp_path / "ref")
    everything = recorded_results(out)
    assert len(everything) == 10
    # resume with fewer inputs: the outputs are those of the fewer inputs, the record keeps every image
    lst = tmp_path / "three.txt"
    lst.write_text("imgs/im01.png\nimgs/im02.png\nimgs/sub/im04.png\n")
    rc = subprocess.run(_cmd(cfg, [lst], out, "--resume"), capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0 and "(3 already done, 0 failed)" in rc.stderr, rc.stderr
    assert main(["label", str(lst), "--config", cfg, "--out", str(tmp_path / "ref3"), "--formats", FORMATS,
                 "--vis", "--no-progress"]) == 0
    mine, ref = _outputs(out), _outputs(tmp_path / "ref3")
    for name in ("coco.json", "labels.jsonl", "failures.jsonl", "yolo/data.yaml"):
        assert mine[name] == ref[name], name
    assert recorded_results(out) == everything  # nothing deleted


def test_a_second_job_on_the_same_folder_is_refused_naming_the_holder(tmp_path, capsys):
    d = _folder(tmp_path)
    cfg = _slow_config(tmp_path, delay=1.0)
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(cfg, [d], out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and recorded_count(out) < 1:
            time.sleep(0.05)
        t0 = time.monotonic()
        rc = main(["label", str(d), "--config", TOY, "--out", str(out), "--resume", "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 1 and time.monotonic() - t0 < 30
        assert "is in use by another openvocab job" in err and f"pid {proc.pid}" in err and "Traceback" not in err
        assert proc.poll() is None  # the first job goes on
    finally:
        proc.kill()
        proc.wait()
    # the holder died (kill -9): its lock went with it, the folder can be resumed at once
    assert main(["label", str(d), "--config", cfg.replace("delay=1.0", "delay=0.0"), "--out", str(out),
                 "--resume", "--no-progress"]) in (0, 1)


def test_used_folder_needs_resume_or_overwrite_and_resume_refuses_another_job(tmp_path, capsys):
    d = _folder(tmp_path, n=4)
    out = tmp_path / "out"
    base = ["label", str(d), "--config", TOY, "--out", str(out), "--no-progress"]
    assert main(base) == 1
    capsys.readouterr()
    assert main(base) == 2
    assert "already holds 4 labeled images" in capsys.readouterr().err
    assert main(base + ["--resume", "--vocab", "cat, dog"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "vocabulary: none -> 2 classes" in err and "tagger" in err
    assert main(base + ["--resume", "--cfg-options", "tagger.threshold=100.0"]) == 2
    assert "tagger.threshold: 127.0 -> 100.0" in capsys.readouterr().err
    assert main(base + ["--resume"]) == 1  # the same job: fine (only broken.png fails again)
    assert "(4 already done, 1 failed)" in capsys.readouterr().err
    assert main(base + ["--overwrite", "--vocab", "cat"]) == 1
    assert "(0 already done" in capsys.readouterr().err
    coco = json.loads((out / "coco.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["cat"]
    assert len(list((out / ".openvocab").glob("state.*.sqlite"))) == 1  # the old record, kept as a backup
    assert main(base + ["--overwrite", "--resume"]) == 2


def test_the_output_folder_is_never_read_as_input(tmp_path):
    d = _folder(tmp_path, n=4)
    out = d / "labels_out"
    for extra in ([], ["--resume"], ["--overwrite"]):
        assert main(["label", str(d), "--config", TOY, "--out", str(out), "--vis", "--no-progress", *extra]) == 1
        coco = json.loads((out / "coco.json").read_text())
        assert len(coco["images"]) == 4 and all("labels_out" not in i["file_name"] for i in coco["images"])
    assert len(list((out / "vis").glob("*.jpg"))) == 4
    assert main(["label", str(out / "vis"), "--config", TOY, "--out", str(out), "--resume", "--no-progress"]) == 1
    failures = [json.loads(l) for l in (out / "failures.jsonl").read_text().splitlines()]
    assert failures[0]["error"].startswith("inside the job's output folder")
