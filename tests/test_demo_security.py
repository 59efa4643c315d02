"""The web demo as an attacker drives it, over HTTP (Gradio's upload endpoint and its event API, as a script on
another machine would): a Python file uploaded and then named as the config is never loaded, the config field
tells nothing about the server's files, and the handlers read only images the page received as uploads."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo_cwd")  # the server's own folder holds a picture nobody uploaded
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(work / "private.png")
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(work / "gr"))
    log = open(work / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "openvocab.cli", "demo", "--config", "tiny_random",
                             "--port", str(port)], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/gradio_api/info", timeout=5)
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            if proc.poll() is not None:
                pytest.fail(f"the demo server exited: {(work / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the demo server did not start in 180 s")
    yield url, work
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def _upload(url: str, name: str, data: bytes) -> str:
    """POST a file to Gradio's upload endpoint (multipart), as any HTTP client can; the server's path of it."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "/gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return json.loads(urllib.request.urlopen(req, timeout=60).read())[0]


def _call(url: str, api: str, data: list) -> tuple[str, object]:
    """Call an event handler through Gradio's HTTP API: ``("complete", outputs)`` or ``("error", message)``."""
    req = urllib.request.Request(f"{url}/gradio_api/call/{api}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    event = json.loads(urllib.request.urlopen(req, timeout=60).read())["event_id"]
    text = urllib.request.urlopen(f"{url}/gradio_api/call/{api}/{event}", timeout=300).read().decode()
    kind, payload = None, None
    for line in text.splitlines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and kind in ("complete", "error"):
            payload = json.loads(line.split(":", 1)[1])
    return kind, payload


def _file(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}


def test_an_uploaded_python_file_named_as_the_config_is_never_run(server, tmp_path):
    url, work = server
    marker = tmp_path / "PWNED"
    path = _upload(url, "evil.py", f"open({str(marker)!r}, 'w').write('ran')\n".encode())
    assert Path(path).is_file()  # Gradio keeps the upload...
    kind, payload = _call(url, "config_widgets", [path])
    assert kind == "error"  # ...but the config field takes only the page's own configs
    for value in (path, str(Path(path).with_suffix("")), "../../../" + path):
        assert _call(url, "config_widgets", [value])[0] == "error"
    settings = ["tiny_random", "cpu", "fp32", ["tagger"], 0.3, 0.2]
    kind, payload = _call(url, "do_label", [None, "", path, *settings[1:]])
    assert kind == "error" or "unknown config" in json.dumps(payload)
    assert not marker.exists()


def test_the_config_field_tells_nothing_about_the_servers_files(server):
    url, work = server
    answers = []
    for probe in ("/etc/passwd", "/etc/no-such-file", str(work / "private.png"), str(work / "missing.py")):
        kind, payload = _call(url, "config_widgets", [probe])
        answers.append((kind, json.dumps(payload).replace(json.dumps(probe)[1:-1], "<VALUE>")))
    assert len(set(answers)) == 1 and answers[0][0] == "error", answers


def test_handlers_read_only_images_that_were_uploaded(server):
    url, work = server
    settings = ["tiny_random", "cpu", "fp32", ["tagger", "mask head"], 0.3, 0.2]
    for path in (str(work / "private.png"), "/etc/passwd", "/proc/self/environ"):
        kind, payload = _call(url, "do_label", [_file(path), "", *settings])
        assert kind == "error" or "Error" in json.dumps(payload), (path, payload)
        assert "tags, " not in json.dumps(payload)  # nothing was labeled
    script = _upload(url, "notes.py", b"print('hi')\n")  # not an image: refused by the page's file types
    assert _call(url, "do_label", [_file(script), "", *settings])[0] == "error"
    for bad in (["tiny_random", "cuda:99", "fp32", [], 0.3, 0.2], ["tiny_random", "cpu", "fp64", [], 0.3, 0.2],
                ["tiny_random", "cpu", "fp32", ["os.system"], 0.3, 0.2], ["tiny_random", "cpu", "fp32", [], 7.0, 0.2]):
        image = _upload(url, "ok.png", (ROOT / "demo" / "images" / "shapes_1.jpg").read_bytes())
        kind, payload = _call(url, "do_label", [_file(image), "", *bad])
        assert kind == "error" or "**Error:**" in json.dumps(payload), (bad, payload)


def test_a_real_upload_is_labeled(server):
    url, _ = server
    image = _upload(url, "shapes_1.jpg", (ROOT / "demo" / "images" / "shapes_1.jpg").read_bytes())
    kind, payload = _call(url, "do_label", [_file(image), "", "tiny_random", "cpu", "fp32", ["tagger", "mask head"],
                                            0.3, 0.2])
    assert kind == "complete", payload
    assert "shapes_1.jpg:" in payload[-1] and "boxes" in payload[-1], payload[-1]
