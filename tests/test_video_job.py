"""Videos as job inputs: kill -9 mid-video and --resume (same outputs as one run, a finished video never redone,
nothing duplicated), bad video files (one line each in failures.jsonl, the job goes on), resuming with other video
settings, and --engine ray."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import av  # noqa: E402,F401  (test dependencies: ./install.sh --test installs them; never skipped)
import trackers  # noqa: E402,F401

import video_synth  # noqa: E402
from openvocab.cli import main  # noqa: E402
from test_video_source import bad_videos  # noqa: E402
from test_video_tracking import shapes_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"
FORMATS = "mot,coco,cvat,yolo"
VOCAB = "circle, square, triangle"


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), str(ROOT)]))


def _two_videos(folder: Path) -> Path:
    folder.mkdir()
    small = [video_synth.render(
        [video_synth.Obj(1, "square", video_synth.PALETTE["square"][0], 9, lambda f: (20 + 3 * f, 40))],
        f, (160, 96), (128, 128, 128))[0] for f in range(30)]
    video_synth.write_video(folder / "a_first.mp4", small)
    video_synth.tracking_video(folder / "b_second.mp4")
    return folder


def _frames_recorded(out: Path, name: str) -> int:
    db = out / ".openvocab" / "state.sqlite"
    if not db.exists():
        return 0
    con = sqlite3.connect(str(db), timeout=30)
    try:
        return con.execute("SELECT COUNT(*) FROM video_frames WHERE key LIKE ?", (f"%{name}%",)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def _outputs(out: Path) -> dict:
    """Every output of a job, comparable across folders (the COCO creation time aside; MP4s by their frames)."""
    import av

    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if p.is_dir() or rel.parts[0] == ".openvocab":
            continue
        if p.suffix == ".mp4":
            with av.open(str(p)) as c:
                files[str(rel)] = [f.to_ndarray(format="rgb24").shape for f in c.decode(c.streams.video[0])]
            continue
        data = p.read_bytes()
        if p.suffix == ".json":
            data = json.loads(data)
            data["info"].pop("date_created", None)
        files[str(rel)] = data
    return files


def test_kill_9_mid_video_then_resume_equals_one_run(tmp_path):
    videos = _two_videos(tmp_path / "videos")
    cfg = shapes_config(tmp_path, delay=0.04, log=str(tmp_path / "seen.txt"))
    ref = tmp_path / "ref"
    assert main(["label", str(videos), "--config", shapes_config(tmp_path), "--vocab", VOCAB, "--out", str(ref),
                 "--formats", FORMATS, "--vis", "--no-progress"]) == 0
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "openvocab.cli", "label", str(videos), "--config", cfg, "--vocab", VOCAB,
           "--out", str(out), "--formats", FORMATS, "--vis", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    seen = tmp_path / "seen.txt"
    while time.time() < deadline and proc.poll() is None and (
            not seen.exists() or seen.read_text().split().count("192") < 30):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _frames_recorded(out, "a_first") == 30 and _frames_recorded(out, "b_second") < 80  # killed mid-video
    assert list((out / "vis_video").glob(".b_second.mp4.*.part"))  # its overlay was being written
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "(1 already done, 0 failed)" in r.stderr
    assert _outputs(out) == _outputs(ref)
    seen = seen.read_text().split()
    assert seen.count("160") == 30  # the finished video was never redone; the unfinished one was
    assert seen.count("192") > 80
    assert _frames_recorded(out, "a_first") == 30 and _frames_recorded(out, "b_second") == 80
    assert not [p for p in out.rglob("*.part")]


def test_bad_video_files_are_listed_and_the_job_goes_on(tmp_path, capsys):
    folder = tmp_path / "in"
    expected = bad_videos(folder)
    video_synth.tracking_video(folder / "good.mp4", cut=10, total=20)
    from PIL import Image

    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(folder / "still.png")
    out = tmp_path / "out"
    rc = main(["label", str(folder), "--config", shapes_config(tmp_path), "--vocab", VOCAB, "--out", str(out),
               "--formats", "mot,coco", "--no-progress"])
    assert rc == 1  # some inputs failed
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(Path(f["file"]).name for f in failures) == sorted(expected)
    for f in failures:
        assert expected[Path(f["file"]).name] in f["error"] and "\n" not in f["error"]
    assert (out / "mot" / "good" / "gt" / "gt.txt").stat().st_size > 0
    coco = json.loads((out / "coco.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["still.png"]  # the image is labeled too
    assert "labeled 2 inputs, 20 video frames (0 already done, 4 failed)" in capsys.readouterr().err


def test_resume_with_other_video_settings_is_refused(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    video_synth.tracking_video(video, cut=10, total=20)
    base = ["label", str(video), "--config", shapes_config(tmp_path), "--vocab", VOCAB, "--out", str(tmp_path / "o"),
            "--formats", "mot", "--no-progress"]
    assert main(base) == 0
    capsys.readouterr()
    assert main(base + ["--resume", "--fps", "5"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "video sampling" in err and "'fps': 5.0" in err
    assert main(base + ["--resume", "--cfg-options", "tracker.lost_track_buffer=5"]) == 2
    assert "lost_track_buffer" in capsys.readouterr().err
    assert main(base + ["--resume"]) == 0


def test_ray_engine_refuses_videos_in_one_line(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    video_synth.tracking_video(video, cut=5, total=8)
    assert main(["label", str(video), "--config", shapes_config(tmp_path), "--vocab", VOCAB, "--out",
                 str(tmp_path / "o"), "--engine", "ray", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--engine ray does not label videos yet" in err and len(err.splitlines()) == 1


def test_formats_added_on_resume_are_made_without_labeling_again(tmp_path):
    import av

    video = tmp_path / "v.mp4"
    video_synth.tracking_video(video, cut=8, total=14)
    log = tmp_path / "seen.txt"
    base = ["label", str(video), "--config", shapes_config(tmp_path, log=str(log)), "--vocab", VOCAB, "--out",
            str(tmp_path / "o"), "--no-progress"]
    assert main(base + ["--formats", "mot"]) == 0
    assert len(log.read_text().split()) == 14
    assert main(base + ["--formats", "mot,yolo", "--vis", "--resume"]) == 0
    assert len(log.read_text().split()) == 14  # the finished video was not labeled again ...
    with av.open(str(tmp_path / "o" / "vis_video" / "v.mp4")) as c:  # ... its overlay and frames were replayed
        assert sum(1 for _ in c.decode(c.streams.video[0])) == 14
    assert len(list((tmp_path / "o" / "yolo_video").glob("images/*/v_*.jpg"))) == 14
    rows = sum(1 for _ in (tmp_path / "o" / "mot" / "v" / "gt" / "gt.txt").open())
    labels = sum(1 for p in (tmp_path / "o" / "yolo_video").glob("labels/*/*.txt") for _ in p.open())
    assert rows == labels > 0
