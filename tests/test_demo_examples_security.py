"""The "Find all like this" tab as an attacker drives it over HTTP (Gradio's event API, as in ``test_demo_security.py``):
its handlers read only images the page received as uploads, never a server path a client names, and the drawn boxes
live in the session's state on the server (a client cannot hand them in)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from test_demo_security import ROOT, _call, _file, _free_port, _upload

SETTINGS = ["tiny_examples", "cpu", "fp32", ["tagger", "mask head"], 0.0, 0.0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo_cwd")
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(work / "private.png")
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(work / "gr"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log = open(work / "server.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "checkout_demo.py"), "demo", "--config",
                             "tiny_examples", "--port", str(port)], cwd=work, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/gradio_api/info", timeout=5)
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            if proc.poll() is not None:
                pytest.fail(f"the demo server exited: {(work / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)  # polling the server's start-up
    else:
        proc.kill()
        pytest.fail("the demo server did not start in 180 s")
    yield url, work
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_the_tab_reads_only_uploads(server):
    url, work = server
    for path in (str(work / "private.png"), "/etc/passwd", "/proc/self/environ"):
        kind, payload = _call(url, "on_upload", [_file(path)])
        text = json.dumps(payload)
        assert kind == "error" or "not an upload of this page" in text, (path, payload)
        assert "Click two opposite corners" not in text  # the picture was not opened
    image = _upload(url, "shapes_1.jpg", (ROOT / "demo" / "images" / "shapes_1.jpg").read_bytes())
    kind, payload = _call(url, "on_upload", [_file(image)])
    assert kind == "complete" and "Click two opposite corners" in payload[-1]
    # more images to search: server paths are refused; without a drawing (a new session) nothing runs
    kind, payload = _call(url, "on_find", [[_file(str(work / "private.png"))], *SETTINGS])
    assert kind == "error" or "**Error:**" in payload[-1], payload
    kind, payload = _call(url, "on_find", [[_file(image)], *SETTINGS])
    assert kind == "complete" and "upload an image" in payload[-1] and "like the" not in payload[-1]
    for bad in (["tiny_examples", "cuda:99", "fp32", [], 0.0, 0.0], ["os.system", "cpu", "fp32", [], 0.0, 0.0]):
        kind, payload = _call(url, "on_find", [[], *bad])
        assert kind == "error" or "**Error:**" in json.dumps(payload), (bad, payload)
