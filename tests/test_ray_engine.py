"""--engine ray on a local Ray instance (CPU): the same outputs as the local engine, and a worker that dies in
mid-batch loses nothing and duplicates nothing."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ray  # the ray extra is part of install.sh --test: CI runs these tests
from job_record import recorded_count
from openvocab.cli import main

PLUGINS = Path(__file__).parent / "plugins"
TOY = str(PLUGINS / "toy_pipeline.py")


@pytest.fixture(scope="module")
def local_ray():
    path = os.pathsep.join([str(PLUGINS), str(Path(__file__).parents[1])] + [p for p in sys.path if p])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             runtime_env={"env_vars": {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}})
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))


def _folder(tmp_path, n=7):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40 + i, 50 + 3 * i, 3), dtype=np.uint8)).save(d / f"im{i}.png")
    (d / "bad.png").write_bytes(b"nope")
    return d


def _coco(out):
    coco = json.loads((out / "coco.json").read_text())
    coco["info"].pop("date_created")
    return coco


def _same(a, b, path="$"):
    """Equal JSON, floats within 1e-4 (relative) / 1e-5 (absolute)."""
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, path
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5), path
    else:
        assert a == b, path


def test_ray_engine_writes_what_the_local_engine_writes(tmp_path, local_ray):
    d = _folder(tmp_path)
    common = ["label", str(d), "--config", "tiny_random", "--formats", "coco,jsonl,yolo", "--no-progress",
              "--batch-size", "2"]
    assert main(common + ["--out", str(tmp_path / "local")]) == 1
    assert main(common + ["--out", str(tmp_path / "ray"), "--engine", "ray", "--num-workers", "2"]) == 1
    # the same file, up to float rounding: Ray's actors run torch on 1 thread each, this process on 2
    _same(_coco(tmp_path / "ray"), _coco(tmp_path / "local"))
    for a, b in zip(*(map(json.loads, (tmp_path / x / "labels.jsonl").read_text().splitlines())
                      for x in ("ray", "local"))):
        _same(a, b)
    assert (tmp_path / "ray" / "failures.jsonl").read_text() == (tmp_path / "local" / "failures.jsonl").read_text()
    local_yolo = sorted(p.name for p in (tmp_path / "local" / "yolo" / "labels").iterdir())
    assert sorted(p.name for p in (tmp_path / "ray" / "yolo" / "labels").iterdir()) == local_yolo
    assert recorded_count(tmp_path / "ray") == 7


def test_a_ray_worker_that_dies_mid_batch_loses_and_duplicates_nothing(tmp_path, local_ray):
    d = _folder(tmp_path, n=8)
    marker = tmp_path / "died"
    cfg = tmp_path / "dying.py"
    cfg.write_text(Path(TOY).read_text().replace(
        "threshold=127.0", f"threshold=127.0, die_on_width={50 + 3 * 5}, die_marker={str(marker)!r}"))
    out = tmp_path / "out"
    assert main(["label", str(d), "--config", str(cfg), "--out", str(out), "--engine", "ray", "--num-workers", "2",
                 "--batch-size", "3", "--formats", "coco,jsonl,labelme", "--no-progress"]) == 1
    assert marker.exists()  # the worker holding im5.png died (os._exit) in the middle of its batch
    coco = _coco(out)
    names = [Path(i["file_name"]).name for i in coco["images"]]
    assert names == [f"im{i}.png" for i in range(8)]  # each exactly once, in input order
    lines = (out / "labels.jsonl").read_text().splitlines()
    assert [Path(json.loads(l)["file"]).name for l in lines] == names
    failures = [json.loads(l) for l in (out / "failures.jsonl").read_text().splitlines()]
    assert [Path(f["file"]).name for f in failures] == ["bad.png"]
    assert recorded_count(out) == 8 and len(list((out / "labelme").glob("*.json"))) == 8
