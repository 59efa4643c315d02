"""The README's "Label by example" Python block, run exactly as written from a folder holding the bundled pictures
(``demo/``) and an ``examples.json`` (the stars and triangles of two of them)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_label_by_example_runs_as_written(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Label by example\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert section, "README.md has no '## Label by example' section"
    (block,) = re.findall(r"^```python\n(.*?)^```", section.group(1), flags=re.S | re.M)
    (tmp_path / "demo").symlink_to(ROOT / "demo")
    gt = json.loads((ROOT / "demo" / "ground_truth.json").read_text())
    keep = [a for a in gt["annotations"] if a["image_id"] <= 2 and a["category_id"] in (3, 4)]
    (tmp_path / "examples.json").write_text(json.dumps({
        "images": [{"id": im["id"], "file_name": "demo/" + im["file_name"]} for im in gt["images"][:2]],
        "categories": [{"id": 4, "name": "part #4711"}, {"id": 3, "name": "defect"}],
        "annotations": [{"id": a["id"], "image_id": a["image_id"], "category_id": a["category_id"],
                         "bbox": a["bbox"]} for a in keep]}))
    (tmp_path / "readme_examples.py").write_text(block)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "readme_examples.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "[('part #4711', 'defect'), ('part #4711', 'defect')]"
    assert re.fullmatch(r"star [1-9]\d* stars", lines[1]), lines
