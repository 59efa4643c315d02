"""A wheel built from the checkout runs ``openvocab label demo/images --config tiny_random`` outside it.

The wheel is installed with ``--no-deps`` into a fresh venv that reuses the packages of the Python running the
tests (torch etc.; that Python may itself be a venv, as in the README's fresh-venv line) but not the checkout:
the venv's ``.pth`` file lists the running Python's site folders (so their ``.pth`` files, the checkout's
editable install among them, are not run). The command runs as the venv's own ``openvocab`` script from another
folder, with a clean ``PYTHONPATH``, so it must find its configs (and their ``_base_``) inside the installed
package.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_wheel_labels_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    # built from a copy of the checkout's sources: a build/ folder left in the checkout (by an earlier build) could
    # carry modules that no longer exist into the wheel
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                                             "runs", "artifacts", ".pytest_cache"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
          str(src)], cwd=tmp_path)
    (wheel,) = dist.glob("openvocab-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"openvocab/configs/{p.relative_to(ROOT / 'configs').as_posix()}"
               for p in (ROOT / "configs").rglob("*.py")}
    assert configs and configs <= shipped, sorted(configs - shipped)
    assert "openvocab/demo/app.py" in shipped and "openvocab/demo/images/shapes_1.jpg" in shipped

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])  # no --system-site-packages: from a venv that is the base's
    py, script = venv / "bin" / "python", venv / "bin" / "openvocab"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    ours = [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages") and os.path.isdir(p)]
    assert ours, sys.path
    (Path(purelib) / "zz_test_parent_packages.pth").write_text("".join(p + "\n" for p in ours))
    _run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    where = _run([str(py), "-c", "import openvocab, openvocab.config as c; print(openvocab.__file__); "
                  "print(c.resolve_config('tiny_random'))"], cwd=elsewhere, env=env).stdout.split()
    site = str(venv / "lib")
    assert where[0].startswith(site) and where[1].startswith(site), where  # the installed copy, not the checkout

    images = ROOT / "demo" / "images"
    out = tmp_path / "out"
    _run([str(script), "label", str(images), "--config", "tiny_random", "--out", str(out), "--no-progress",
          "--formats", "coco,jsonl"], cwd=elsewhere, env=env)
    coco = json.loads((out / "coco.json").read_text())
    assert sorted(Path(i["file_name"]).name for i in coco["images"]) == sorted(p.name for p in images.glob("*.jpg"))
    assert coco["annotations"], "the tiny random pipeline keeps boxes"
    assert all("segmentation" in a for a in coco["annotations"])  # the mask head ran too
    assert (out / "failures.jsonl").read_text() == ""
