"""The README's training lines run as written, from a fresh clone's root (no data/ folder yet): data generation,
training with console progress (iteration, loss, ETA, validation metric), then tagging with the result."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_training_lines() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Training\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the README's Training section has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_training_lines_run_as_written(tmp_path):
    lines = readme_training_lines()
    assert any(line.startswith("openvocab train ") for line in lines)
    assert any("openvocab.training.synthetic" in line for line in lines)  # the data step comes first
    # a fresh clone: the repository's tracked files, nothing generated
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    clone = tmp_path / "clone"
    for rel in filter(None, files):
        src, dst = ROOT / os.fsdecode(rel), clone / os.fsdecode(rel)
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
    env = dict(os.environ, PYTHONPATH=str(clone), HF_HUB_OFFLINE="1")
    outputs = []
    for line in lines:
        argv = shlex.split(line)
        if argv[0] == "openvocab":  # the console script of this clone
            argv = [sys.executable, "-m", "openvocab.cli", *argv[1:]]
        elif argv[0] in ("python", "python3"):
            argv = [sys.executable, *argv[1:]]
        proc = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        outputs.append(proc.stdout)
    train = next(out for line, out in zip(lines, outputs) if line.startswith("openvocab train "))
    progress = [s for s in train.splitlines() if s.startswith("iter ")]
    assert progress and progress[-1].startswith("iter 300/300") and " eta 0:00:00" in progress[-1]
    assert all(re.search(r"loss \d+\.\d{4}", s) and " eta " in s for s in progress)
    metric = [s for s in train.splitlines() if s.startswith("val at iter 300:")]
    assert metric and float(re.search(r"tag/mAP (\d\.\d+)", metric[0]).group(1)) > 0.5  # it learned
    assert (clone / "work_dirs" / "tagger_tiny" / "exported.safetensors").is_file()
    tagged = outputs[-1].strip()
    assert tagged.startswith("data/synthetic/val/images/00000.png: ") and "(" in tagged
