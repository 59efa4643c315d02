"""The README's video example from Python (the ```python block of its "Videos" section that calls label_video), run
as written on a short synthetic clip."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path


import av  # noqa: E402,F401  (test dependencies: ./install.sh --test installs them; never skipped)
import trackers  # noqa: E402,F401

import video_synth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_readme_video_api_runs_as_written(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Videos\n(.*?)(?=^## )", text, flags=re.S | re.M).group(1)
    block = next(b for b in re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M) if "label_video" in b)
    video_synth.tracking_video(tmp_path / "clip.mp4", cut=15, total=25)  # 1 s at 25 fps
    (tmp_path / "example.py").write_text(block)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [str(i) for i in range(5)]  # 5 frames/s of 1 s
    assert lines[-1] == "1 video, 25 frames labeled into runs/video_api"  # the job: every frame
    coco = json.loads((tmp_path / "runs" / "video_api" / "coco_video.json").read_text())
    assert len(coco["images"]) == 25 and (tmp_path / "runs" / "video_api" / "mot" / "clip" / "seqinfo.ini").exists()
