"""install.sh checks, right after installing them, that torch and torchvision work together (a CPU torch beside a
CUDA torchvision only fails much later, as "Could not import module 'CLIPTextModelWithProjection'"), in one line."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _check_torch(env_extra: dict) -> subprocess.CompletedProcess:
    """install.sh's ``check_torch`` function, run by bash as install.sh runs it."""
    script = (ROOT / "install.sh").read_text()
    start = script.index("check_torch() {")
    end = script.index("\n}\n", start) + 3
    env = {**os.environ, **env_extra}
    return subprocess.run(["bash", "-c", script[start:end] + "check_torch\necho checked"], capture_output=True,
                          text=True, env=env, timeout=300)


def test_a_working_pair_passes():
    run = _check_torch({})
    assert run.returncode == 0 and run.stdout.strip() == "checked", run.stderr


def test_a_torchvision_built_for_another_torch_is_one_line(tmp_path):
    fake = tmp_path / "torchvision"
    (fake / "ops").mkdir(parents=True)
    (fake / "__init__.py").write_text("from . import ops\n")
    (fake / "ops" / "__init__.py").write_text(
        "def nms(*a, **k):\n    raise RuntimeError('operator torchvision::nms does not exist')\n")
    run = _check_torch({"PYTHONPATH": str(tmp_path)})
    assert run.returncode == 1 and "checked" not in run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert lines[0].startswith("install.sh: torch ") and "do not work together" in lines[0]
    assert "operator torchvision::nms does not exist" in lines[0] and "--force-reinstall" in lines[0]
