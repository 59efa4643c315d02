"""Fuzz: a folder of randomly named files (bytes that are not UTF-8, newlines, leading dashes, very long names),
good and bad images mixed, labeled, killed once, resumed: every input is in coco.json or in failures.jsonl, exactly
once."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from job_record import recorded_count

PLUGINS = Path(__file__).parent / "plugins"
TOY = PLUGINS / "toy_pipeline.py"


def _random_name(rng: random.Random, k: int) -> bytes:
    kind = k % 5
    if kind == 0:  # bytes that are not UTF-8
        body = bytes(rng.choice([0xE9, 0xFF, 0xC3, 0x80, 0xFE]) for _ in range(rng.randint(1, 6))) + b"x"
    elif kind == 1:  # a newline (and a tab) inside the name
        body = b"line\nbreak\t" + str(k).encode()
    elif kind == 2:  # a leading dash: looks like an option
        body = b"--resume-" + str(k).encode()
    elif kind == 3:  # very long: the file system's limit is 255 bytes
        body = ("\u00e9" * 120).encode() + str(k).encode()
    else:  # quotes, spaces, unicode
        body = f"\"it's\" \u732b {k}".encode()
    return body[:245] + f"_{k}".encode()


def test_random_names_good_and_bad_images_killed_once_then_resumed(tmp_path):
    rng = random.Random(1234)
    d = tmp_path / "fuzz"
    d.mkdir()
    expected_good, expected_bad = set(), set()
    for k in range(20):
        raw = os.fsencode(str(d)) + b"/" + _random_name(rng, k) + b".png"
        path = os.fsdecode(raw)
        if k % 4 == 3:
            Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(40)))  # corrupt
            expected_bad.add(raw)
        else:
            Image.fromarray(np.full((12 + k, 16, 3), rng.randrange(256), np.uint8)).save(path, format="PNG")
            expected_good.add(raw)
    cfg = tmp_path / "slow.py"
    cfg.write_text(TOY.read_text().replace("threshold=127.0", "threshold=127.0, delay=0.15"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "openvocab.cli", "label", str(d), "--config", str(cfg), "--out", str(out),
           "--formats", "coco,jsonl,labelme", "--vis", "--no-progress"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGINS), str(Path(__file__).parents[1])]))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and recorded_count(out) < 5 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < recorded_count(out) < 15
    rc = subprocess.run(cmd + ["--resume"], capture_output=True, timeout=300, env=env)
    assert rc.returncode == 1 and b"Traceback" not in rc.stderr, rc.stderr.decode(errors="replace")
    coco = json.loads((out / "coco.json").read_bytes().decode("utf-8"))
    # COCO names images relative to the image root (here the input folder)
    labeled = [os.fsencode(str(d)) + b"/" + os.fsencode(i["file_name"]) for i in coco["images"]]
    failures = [json.loads(l) for l in (out / "failures.jsonl").read_bytes().decode("utf-8").splitlines()]
    failed = [os.fsencode(f["file"]) for f in failures]
    assert sorted(labeled) == sorted(expected_good) and len(set(labeled)) == len(labeled)
    assert sorted(failed) == sorted(expected_bad) and len(set(failed)) == len(failed)
    lines = (out / "labels.jsonl").read_bytes().decode("utf-8").splitlines()
    assert [os.fsencode(json.loads(l)["file"]) for l in lines] == labeled
    assert len(list((out / "labelme").glob("*.json"))) == len(expected_good) == len(list((out / "vis").iterdir()))
