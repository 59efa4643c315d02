"""The README's Python API examples, run exactly as written (every ```python block of its "Python API" section,
in order, as one script), from a folder where ``demo/`` is the checkout's bundled pictures."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from pycocotools.coco import COCO

ROOT = Path(__file__).resolve().parents[1]


def api_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Python API\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert section, "README.md has no '## Python API' section"
    return re.findall(r"^```python\n(.*?)^```", section.group(1), flags=re.S | re.M)


def test_readme_python_api_runs_as_written(tmp_path):
    blocks = api_blocks()
    assert len(blocks) >= 2 and "Labeler.from_config" in blocks[0]
    script = tmp_path / "readme_api.py"
    script.write_text("\n".join(blocks))
    (tmp_path / "demo").symlink_to(ROOT / "demo")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert re.search(r"^\d+ masks; first caption:", out, flags=re.M)
    assert re.search(r"^\d+ annotations$", out, flags=re.M)
    assert re.search(r"^\(\d+, 4\) \(\d+, 480, 640\) \[", out, flags=re.M)  # supervision Detections of shapes_2
    assert "4 images labeled into runs/api" in out
    assert "show(): no display here" in r.stderr  # .show() without a display only warns
    assert (tmp_path / "overlay.png").stat().st_size > 0
    coco = COCO(str(tmp_path / "runs" / "api" / "coco.json"))
    assert len(coco.imgs) == 4 and coco.anns
    assert len(list((tmp_path / "runs" / "api" / "vis").glob("*.png"))) == 4
    assert (tmp_path / "runs" / "api" / "yolo" / "data.yaml").is_file()
