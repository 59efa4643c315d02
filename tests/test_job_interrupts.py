"""Stopping a job at any moment: kill -9 at random points (while labeling and while the outputs are rendered) then
--resume leaves the folder an uninterrupted run leaves; SIGTERM behaves as Ctrl-C (outputs rendered, one line, how
to resume); Ctrl-C during start-up is one line, never a traceback."""
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

from job_record import recorded_count

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"
TOY = PLUGINS / "toy_pipeline.py"
FORMATS = "coco,jsonl,yolo,labelme,cvat,voc,labelstudio"
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGINS), str(ROOT)]))


def _folder(root: Path, n: int = 8) -> Path:
    d = root / "imgs"
    d.mkdir()
    for i in range(n):
        Image.fromarray(np.full((20 + i, 28, 3), 220 if i % 3 else 25, np.uint8)).save(d / f"im{i:02d}.png")
    (d / "broken.png").write_bytes(b"not a png")
    return d


def _config(tmp_path: Path, delay: float) -> str:
    cfg = tmp_path / "slow.py"
    cfg.write_text(TOY.read_text().replace("threshold=127.0", f"threshold=127.0, delay={delay}"))
    return str(cfg)


def _cmd(cfg: str, inputs: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "openvocab.cli", "label", str(inputs), "--config", cfg, "--out", str(out),
            "--formats", FORMATS, "--vis", "--no-progress", *extra]


def _listing(out: Path) -> dict[str, object]:
    """Every entry of the folder but the record, with the content of the aggregate files (the creation date of
    COCO aside)."""
    files: dict[str, object] = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if rel.parts[0] == ".openvocab":
            continue
        files[str(rel)] = None
        if p.is_file() and p.suffix in (".json", ".jsonl", ".txt") and p.parent == out:
            data = p.read_text()
            if p.name == "coco.json":
                coco = json.loads(data)
                coco["info"].pop("date_created")
                data = coco
            files[str(rel)] = data
    return files


def _rendering(out: Path) -> bool:
    """Whether the job is writing its final outputs (a temp entry beside them, or in one of its folders)."""
    try:
        return any(p.name.endswith(".part") for p in out.iterdir()) or any(
            p.name.endswith(".part") for p in (out / "cvat").parent.glob("*/.*"))
    except OSError:
        return False


def _kill_when(cmd: list[str], ready, delay: float) -> int:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait()


def test_kill_9_at_any_moment_then_resume_leaves_the_folder_of_an_uninterrupted_run(tmp_path):
    d = _folder(tmp_path)
    cfg = _config(tmp_path, delay=0.05)
    ref = tmp_path / "ref"
    assert subprocess.run(_cmd(cfg, d, ref), env=ENV, capture_output=True, timeout=300).returncode == 1
    expected = _listing(ref)
    assert "cvat/default.xml" in expected and "failures.jsonl" in expected
    # (moment, extra delay): while labeling (after k recorded images), and while rendering the outputs
    moments = [("labeling", 1, 0.0), ("labeling", 5, 0.0), ("rendering", 0, 0.0), ("rendering", 0, 0.05),
               ("rendering", 0, 0.15), ("rendering", 0, 0.4)]
    for phase, k, delay in moments:
        out = tmp_path / f"out_{phase}_{k}_{delay}"
        ready = (lambda out=out, k=k: recorded_count(out) >= k) if phase == "labeling" else (lambda out=out: _rendering(out))
        _kill_when(_cmd(cfg, d, out), ready, delay)
        run = subprocess.run(_cmd(cfg, d, out, "--resume"), env=ENV, capture_output=True, text=True, timeout=300)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr  # broken.png still fails
        assert _listing(out) == expected, (phase, k, delay, set(_listing(out)) ^ set(expected))


def test_sigterm_renders_what_is_done_and_says_how_to_resume(tmp_path):
    d = _folder(tmp_path, n=12)
    cfg = _config(tmp_path, delay=0.3)
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(cfg, d, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while time.time() < deadline and recorded_count(out) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.startswith("openvocab label:")]
    assert "Traceback" not in err and len(lines) == 1, err  # (beside the warning naming broken.png)
    assert "interrupted" in lines[0] and "--resume" in lines[0]
    done = recorded_count(out)
    coco = json.loads((out / "coco.json").read_text())
    assert 2 <= len(coco["images"]) == done < 12  # what was finished is written
    run = subprocess.run(_cmd(cfg, d, out, "--resume"), env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and f"({done} already done, 1 failed)" in run.stderr
    assert len(json.loads((out / "coco.json").read_text())["images"]) == 12


@pytest.mark.parametrize("after", [0.3, 0.8, 1.5, 2.5])
def test_ctrl_c_during_start_up_is_one_line(tmp_path, after):
    d = _folder(tmp_path, n=2)
    proc = subprocess.Popen(_cmd(str(TOY), d, tmp_path / "out"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    if proc.returncode == 130:  # interrupted: one line, and how to go on
        assert len(err.strip().splitlines()) == 1 and "interrupted" in err, err
    else:  # it finished before the signal came
        assert proc.returncode == 1, err
