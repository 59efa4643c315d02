"""A hostile or untidy output folder: the job writes only inside --out, only what it wrote itself, never through a
symbolic link; --overwrite removes exactly the previous job's files; a resume removes the temp files a killed run
left. Each refusal is one line naming the path and what to do, with a non-zero exit and no traceback."""
from __future__ import annotations

import json
import os
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


def _images(d: Path, n: int = 4, start: int = 0) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        Image.fromarray(np.full((16 + i, 24, 3), 200 if i % 2 else 30, np.uint8)).save(d / f"im{i}.png")
    return d


def _label(inputs, out, *extra) -> int:
    return main(["label", *map(str, inputs), "--config", TOY, "--out", str(out), "--no-progress", *extra])


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("openvocab label:")]
    assert len(lines) == 1, err
    return lines[0]


def _victim(tmp_path: Path, name: str = "victim.txt") -> Path:
    v = tmp_path / name
    v.write_text("precious\n")
    return v


# (what is planted in OUT before a fresh job, exit status, a part of the one line); the victim must stay intact
HOSTILE = {
    "lock_symlink": (lambda out, v: (out / ".openvocab").mkdir() or os.symlink(v, out / ".openvocab" / "lock"),
                     1, "lock: is a symbolic link"),
    "lock_hardlink": (lambda out, v: (out / ".openvocab").mkdir() or os.link(v, out / ".openvocab" / "lock"),
                      1, "not a plain file of its own"),
    "state_dir_symlink": (lambda out, v: os.symlink(v.parent, out / ".openvocab"), 2, ".openvocab: is a symbolic link"),
    "record_symlink": (lambda out, v: (out / ".openvocab").mkdir() or os.symlink(v, out / ".openvocab" / "state.sqlite"),
                       1, "state.sqlite: a symbolic link"),
    "failures_symlink": (lambda out, v: os.symlink(v, out / "failures.jsonl"), 2,
                         "failures.jsonl: already there and not written by this job"),
    "coco_symlink": (lambda out, v: os.symlink(v, out / "coco.json"), 2, "coco.json: already there and not written"),
    "users_coco": (lambda out, v: (out / "coco.json").write_text("ground truth"), 2, "coco.json: already there"),
    "users_classes": (lambda out, v: (out / "classes.txt").write_text("mine"), 2, "classes.txt: already there"),
    "yolo_is_a_file": (lambda out, v: (out / "yolo").write_text("x"), 2, "yolo: already there"),
    "vis_is_a_file": (lambda out, v: (out / "vis").write_text("x"), 2, "vis: already there"),
    "vis_symlink": (lambda out, v: os.symlink(v.parent, out / "vis"), 2, "vis: already there"),
    "failures_is_a_folder": (lambda out, v: (out / "failures.jsonl").mkdir(), 2, "failures.jsonl: already there"),
    "coco_is_a_folder": (lambda out, v: (out / "coco.json").mkdir(), 2, "coco.json: already there"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_output_folder_is_refused_in_one_line_and_nothing_is_clobbered(tmp_path, capsys, case):
    plant, status, part = HOSTILE[case]
    imgs = _images(tmp_path / "imgs")
    victim = _victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    plant(out, victim)
    before = {p.name: (p.is_symlink(), p.is_dir()) for p in out.iterdir()}
    rc = _label([imgs], out, "--formats", "coco,jsonl,yolo", "--vis")
    line = _one_line(capsys.readouterr().err)
    assert rc == status and part in line, line
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in victim.parent.iterdir() if p.name != "victim.txt") == ["imgs", "out"]
    if case.startswith("users_"):  # the user's own file is exactly as it was
        assert (out / ("coco.json" if case == "users_coco" else "classes.txt")).read_text() in ("ground truth", "mine")
    after = {p.name: (p.is_symlink(), p.is_dir()) for p in out.iterdir()}
    assert {k: v for k, v in after.items() if k != ".openvocab"} == {k: v for k, v in before.items()
                                                                     if k != ".openvocab"}


def test_users_dataset_folder_as_out_keeps_its_ground_truth(tmp_path, capsys):
    """``openvocab label ds/images --out ds`` where ds/coco.json is the user's: the input is inside the output
    folder and refused, and the user's coco.json and classes.txt are not replaced."""
    ds = tmp_path / "ds"
    _images(ds / "images")
    (ds / "coco.json").write_text('{"images": [], "annotations": [], "categories": []}')
    (ds / "classes.txt").write_text("cat\n")
    rc = _label([ds / "images"], ds)
    line = _one_line(capsys.readouterr().err)
    assert rc == 2 and "already there and not written by this job" in line
    assert (ds / "coco.json").read_text() == '{"images": [], "annotations": [], "categories": []}'
    assert (ds / "classes.txt").read_text() == "cat\n"
    assert not (ds / ".openvocab").exists() and not (ds / "labels.jsonl").exists()


def test_links_planted_after_a_run_are_replaced_never_followed(tmp_path, capsys):
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    assert _label([imgs], out, "--formats", "coco,jsonl,labelme") == 0
    victims = {name: _victim(tmp_path, f"victim_{name}") for name in ("failures.jsonl", "coco.json", "labels.jsonl")}
    for name, v in victims.items():
        (out / name).unlink()
        os.symlink(v, out / name)
    assert _label([imgs], out, "--formats", "coco,jsonl,labelme", "--resume") == 0
    for name, v in victims.items():
        assert v.read_text() == "precious\n" and not (out / name).is_symlink()
    assert len(json.loads((out / "coco.json").read_text())["images"]) == 4
    # a folder of the job replaced by a link to somewhere else: refused, nothing written there
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.rename(out / "labelme", tmp_path / "old_labelme")
    os.symlink(elsewhere, out / "labelme")
    assert _label([imgs], out, "--formats", "coco,jsonl,labelme", "--resume") == 1
    line = _one_line(capsys.readouterr().err)
    assert "labelme: is a symbolic link" in line and list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("option", ["writers.labelme.subdir=../../escape", "writers.labelme.subdir={tmp}/escape",
                                    "writers.coco.filename=../coco.json", "writers.vis.subdir=..",
                                    "writers.yolo.subdir=.openvocab", "writers.jsonl.filename=a/b.jsonl"])
def test_every_writer_path_stays_inside_out(tmp_path, capsys, option):
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "a" / "b" / "out"
    rc = _label([imgs], out, "--formats", "coco,jsonl,labelme,yolo", "--vis", "--cfg-options",
                option.replace("{tmp}", str(tmp_path)))
    line = _one_line(capsys.readouterr().err)
    assert rc == 2 and "must be a plain name inside the output folder" in line
    assert [p.name for p in tmp_path.iterdir()] == ["imgs"]  # refused before anything was made (no escape/)


def test_two_writers_may_not_share_a_folder(tmp_path, capsys):
    imgs = _images(tmp_path / "imgs")
    rc = _label([imgs], tmp_path / "out", "--formats", "labelme", "--vis", "--cfg-options", "writers.vis.subdir=labelme")
    assert rc == 2 and "same place, 'labelme'" in _one_line(capsys.readouterr().err)


def _yolo_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in (out / "yolo").rglob("*") if p.is_file() or p.is_symlink())


def test_overwrite_removes_exactly_the_previous_jobs_files(tmp_path, capsys):
    imgs = _images(tmp_path / "imgs", n=6)
    out = tmp_path / "out"
    assert _label([imgs], out, "--formats", "coco,yolo,labelme", "--vis") == 0
    (out / "notes.txt").write_text("the user's own notes")
    assert len(list((out / "labelme").glob("*.json"))) == 6
    few = _images(tmp_path / "few", n=2, start=10)
    assert _label([few], out, "--formats", "coco,yolo", "--vocab", "box", "--overwrite") == 0
    assert (out / "notes.txt").read_text() == "the user's own notes"  # not the job's: kept
    assert not (out / "labelme").exists() and not (out / "vis").exists()  # the old job's, not asked again
    files = _yolo_files(out)
    assert sorted(Path(f).stem for f in files if "/labels/" in f) == ["im10", "im11"]
    assert sorted(Path(f).stem for f in files if "/images/" in f) == ["im10", "im11"]
    names = (out / "yolo" / "data.yaml").read_text()
    assert "nc: 1" in names
    for f in files:  # every label's class id exists in data.yaml (what Ultralytics checks)
        if f.endswith(".txt"):
            assert all(line.split()[0] == "0" for line in (out / f).read_text().splitlines())
    assert len(json.loads((out / "coco.json").read_text())["images"]) == 2
    assert any(p.name.startswith("state.") and p.name != "state.sqlite" for p in (out / ".openvocab").iterdir())


def test_resume_removes_the_temp_files_of_a_killed_run_and_nothing_else(tmp_path):
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    assert _label([imgs], out, "--formats", "coco,jsonl,yolo,cvat", "--vis") == 0
    reference = sorted(str(p.relative_to(out)) for p in out.rglob("*") if ".openvocab" not in p.parts)
    stale = [out / ".coco.json.k2j4h5g6.part", out / ".failures.jsonl.abcd1234.part", out / ".cvat.8fj3k2l1.part",
             out / "yolo" / "labels" / "train" / ".im1.txt.xyz12345.part", out / "vis" / ".im2.jpg.q1w2e3r4.part"]
    for p in stale:
        if p.name.startswith(".cvat"):
            (p / "cvat").mkdir(parents=True)
        else:
            p.write_text("half")
    users = out / ".my_notes.part"  # not beside one of the job's own names: the user's
    users.write_text("mine")
    assert _label([imgs], out, "--formats", "coco,jsonl,yolo,cvat", "--vis", "--resume") == 0
    assert not any(os.path.lexists(p) for p in stale)
    assert users.read_text() == "mine"
    users.unlink()
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if ".openvocab" not in p.parts) == reference
    assert recorded_count(out) == 4


def _privileged(cmd: list[str]) -> None:
    import subprocess

    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"needs root ({' '.join(cmd[:2])}: {run.stderr.strip()})")


def test_an_immutable_output_folder_is_one_line_and_stays_resumable(tmp_path, capsys):
    import subprocess

    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    assert _label([imgs], out, "--formats", "coco,labelme") == 0
    _privileged(["chattr", "+i", str(out)])
    try:
        rc = _label([_images(tmp_path / "imgs", n=2, start=4)], out, "--formats", "coco,labelme", "--resume")
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    line = _one_line(capsys.readouterr().err)
    assert rc == 1 and "not allowed to write there" in line and "--resume" in line, line
    assert "failures.jsonl" in line  # the first file the job makes: it stops before labeling anything
    assert recorded_count(out) == 4 and len(json.loads((out / "coco.json").read_text())["images"]) == 4
    assert _label([imgs], out, "--formats", "coco,labelme", "--resume") == 0
    assert len(json.loads((out / "coco.json").read_text())["images"]) == 6


def test_a_full_disk_while_saving_the_job_record_is_one_line(tmp_path, capsys):
    import subprocess

    out = tmp_path / "small"
    out.mkdir()
    _privileged(["mount", "-t", "tmpfs", "-o", "size=80k", "tmpfs", str(out)])
    try:
        rc = _label([_images(tmp_path / "imgs", n=3)], out, "--formats", "coco,jsonl", "--vis")
        line = _one_line(capsys.readouterr().err)
    finally:
        subprocess.run(["umount", str(out)], check=True)
    assert rc == 1 and "the disk is full" in line, line
