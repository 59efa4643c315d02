"""Faults of a labeling job end in one line (exit 2 for usage errors, 1 for runtime ones), never a traceback, and
never lose finished work: a full disk, an --out that is a file or cannot be written, devices that do not exist,
bad numbers."""
from __future__ import annotations

import errno
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


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 24, 3), 200, np.uint8)).save(d / f"{i}.png")
    return d


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if l.startswith("openvocab label:")]
    assert len(lines) == 1, err
    return lines[0]


def test_full_disk_stops_with_one_line_and_keeps_finished_images(folder, tmp_path, capsys, monkeypatch):
    from openvocab.writers import coco

    real = coco.atomic_open

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(coco, "atomic_open", full)
    out = tmp_path / "out"
    assert main(["label", str(folder), "--config", TOY, "--out", str(out), "--no-progress"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "the disk is full" in line and "coco.json" in line and "--resume" in line
    assert recorded_count(out) == 3  # every finished image is in the record
    monkeypatch.setattr(coco, "atomic_open", real)
    assert main(["label", str(folder), "--config", TOY, "--out", str(out), "--no-progress", "--resume"]) == 0
    assert "(3 already done, 0 failed)" in capsys.readouterr().err
    assert len(json.loads((out / "coco.json").read_text())["images"]) == 3


def test_full_disk_while_writing_per_image_files(folder, tmp_path, capsys, monkeypatch):
    from openvocab.writers import yolo

    def full(path, text, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(yolo, "atomic_write_text", full)
    out = tmp_path / "out"
    assert main(["label", str(folder), "--config", TOY, "--out", str(out), "--formats", "coco,yolo",
                 "--vocab", "box", "--no-progress"]) == 1  # a vocabulary: YOLO ids are known, files written at once
    line = _one_line(capsys.readouterr().err)
    assert "cannot write the outputs of" in line and "the disk is full" in line


@pytest.mark.parametrize("case", ["out_is_a_file", "out_not_writable"])
def test_unusable_output_folder(folder, tmp_path, capsys, monkeypatch, case):
    out = tmp_path / "out"
    if case == "out_is_a_file":
        out.write_text("x")
        expected = "is a file, not a folder"
    else:
        out.mkdir()
        real = os.mkdir

        def refuse(path, *a, **k):  # as a read-only folder refuses (root ignores chmod, so refused here)
            if str(path).startswith(str(out)):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(path, *a, **k)

        monkeypatch.setattr(os, "mkdir", refuse)
        expected = "cannot write in the output folder"
    assert main(["label", str(folder), "--config", TOY, "--out", str(out), "--no-progress"]) == 2
    assert expected in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("args,code,expected", [
    (["--device", "banana"], 2, "unknown device 'banana'"),
    (["--device", "cuda:7"], 2, "device 'cuda:7'"),
    (["--batch-size", "0"], 2, "must be a finite number >= 1"),
    (["--batch-size", "-1"], 2, "must be a finite number >= 1"),
    (["--workers", "-2"], 2, "must be a finite number >= 0"),
    (["--max-pixels", "0"], 2, "must be a finite number >= 1"),
    (["--formats", ""], 2, "No output format given"),
    (["--formats", "coco,pdf"], 2, "Unknown output format"),
    (["--resume", "--overwrite"], 2, "exclude each other"),
    (["--engine", "spark"], 2, "invalid choice"),
])
def test_bad_label_arguments_are_one_line_usage_errors(folder, tmp_path, capsys, args, code, expected):
    try:
        rc = main(["label", str(folder), "--config", TOY, "--out", str(tmp_path / "out"), "--no-progress", *args])
    except SystemExit as e:  # argparse's own usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == code and expected in err and "Traceback" not in err
