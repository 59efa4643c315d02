"""The web demo driven in a real headless Chromium (Playwright's Python API, Debian's ``chromium`` as the browser;
``./install.sh --test`` installs both).

``openvocab demo --config tiny_random`` is started as a user starts it; the page gets a bad upload (a readable
message), then a real photo: the drawn image must carry the masks and boxes of the regions table, and the
downloaded COCO JSON must load in pycocotools and match the table. A full-page screenshot is saved as a test
artifact (``$OPENVOCAB_TEST_ARTIFACTS`` or ``tests/artifacts/``).
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from openvocab.writers.overlay import tag_color

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("OPENVOCAB_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
#: as root, without a GPU, and no background connections (this machine has no network but PyPI's and Debian's)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
#: the regions table's body rows (Gradio 6 renders them as virtual rows; its <table> only measures column widths)
REGIONS = "#ov-regions div[role='row'].virtual-row"


def _chromium() -> str:
    path = os.environ.get("OPENVOCAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium not found: ./install.sh --test installs Debian's chromium (or set OPENVOCAB_CHROMIUM)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def demo_server(tmp_path):
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(tmp_path / "gr"))
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "openvocab.cli", "demo", "--config", "tiny_random",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the demo server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
                time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _status(page, sel: str, needle: str) -> str:
    page.wait_for_function("([s, n]) => (document.querySelector(s)?.innerText || '').includes(n)",
                           arg=[sel, needle], timeout=240_000)
    return page.locator(sel).inner_text()


def _upload(page, field: str, path: Path, *, shown: str = "") -> None:
    """Upload ``path`` as a user does: click the field's drop zone once it can be clicked (a tab that has just opened
    is mounted by then), answer the file chooser, and wait until the field shows the file: its name (Gradio may
    render the stem and the extension as two lines, so white space is ignored), or the element ``shown``."""
    with page.expect_file_chooser() as chooser:
        page.click(f"{field} button.upload-container")
    chooser.value.set_files(str(path))
    if shown:
        page.wait_for_selector(shown)
    else:
        page.wait_for_function("([s, n]) => (document.querySelector(s)?.innerText || '').replace(/\\s+/g, '')"
                               ".includes(n)", arg=[field, path.name], timeout=60_000)


def test_demo_page_in_chromium(demo_server, shared_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    photo = shared_dir / "images" / "demo4.jpg"  # a real photo, 428x640
    original = np.asarray(Image.open(photo).convert("RGB")).astype(int)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        page.goto(demo_server)
        assert "Random weights" in _status(page, "#ov-banner", "meaningless")

        bad = tmp_path / "notes.jpg"
        bad.write_text("not a picture")
        _upload(page, "#ov-upload", bad)
        page.click("#ov-run")
        assert "notes.jpg: not an image" in _status(page, "#ov-status", "Error")

        page.click("#ov-upload button[aria-label='Clear']")
        # the page's own state, not timing: the cleared field has dropped the old file and shows its drop zone
        page.wait_for_function("s => !(document.querySelector(s)?.innerText || '').replace(/\\s+/g, '')"
                               ".includes('notes.jpg')", arg="#ov-upload")
        _upload(page, "#ov-upload", photo)
        page.click("#ov-run")
        status = _status(page, "#ov-status", "boxes")  # (the progress overlay's text may still be in it)
        assert "demo4.jpg: " in status, status

        found = re.search(r"(\d+) boxes, (\d+) masks", status)
        assert found and found.group(1) == found.group(2), status
        n = int(found.group(1))
        assert n > 0, "the tiny random pipeline keeps boxes (max_detections=5)"
        # the table is rendered after the status line: wait until it holds the status's boxes
        page.wait_for_function("([s, n]) => document.querySelectorAll(s).length === n", arg=[REGIONS, n],
                               timeout=60_000)
        rows = [page.locator(REGIONS).nth(i).locator("[role='gridcell']").all_inner_texts() for i in range(n)]
        drawn_src = page.locator("#ov-result img").get_attribute("src")
        drawn = np.asarray(Image.open(io.BytesIO(page.request.get(drawn_src).body())).convert("RGB")).astype(int)
        with page.expect_download() as download:
            page.click("#ov-dl-coco")
        coco_path = tmp_path / "coco.json"
        download.value.save_as(coco_path)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo_page.png"), full_page=True)

        page.click("#ov-tab-ground-button")
        _upload(page, "#ov-g-upload", photo)
        page.fill("#ov-g-text textarea", "the man in a red shirt")
        page.click("#ov-g-run")
        assert "for 'the man in a red shirt'" in _status(page, "#ov-g-status", "boxes")

        # click to segment: a click on the picture is a point prompt for the config's mask head
        page.click("#ov-tab-prompt-button")
        _upload(page, "#ov-p-image", photo, shown="#ov-p-image img")
        shown = page.locator("#ov-p-image img")
        where = shown.bounding_box()
        page.mouse.click(where["x"] + where["width"] * 0.5, where["y"] + where["height"] * 0.25)
        clicked = _status(page, "#ov-p-list", "point (")
        x, y = (float(v) for v in re.search(r"point \(([\d.]+), ([\d.]+)\)", clicked).groups())
        assert abs(x - 214) < 15 and abs(y - 160) < 15, clicked  # image pixels of the click (428x640 photo)
        page.click("#ov-p-run")
        assert "1 masks (0 boxes, 1 points)" in _status(page, "#ov-p-status", "masks")
        browser.close()

    coco = COCO(str(coco_path))
    (image,) = coco.loadImgs(coco.getImgIds())
    assert (image["file_name"], image["width"], image["height"]) == ("demo4.jpg", 428, 640)
    anns = sorted(coco.loadAnns(coco.getAnnIds()), key=lambda a: a["id"])
    assert len(anns) == len(rows)
    assert drawn.shape == original.shape
    for row, ann in zip(rows, anns):
        label = coco.cats[ann["category_id"]]["name"]
        assert row[1] == label == ann["tag"]
        x, y, w, h = ann["bbox"]
        assert [float(v) for v in row[3].split(",")] == pytest.approx([x, y, x + w, y + h], abs=0.06)
        mask = coco.annToMask(ann).astype(bool)
        assert int(row[4]) == mask.sum() == int(ann["area"])
        # the mask is drawn: its pixels were blended towards the tag's colour
        moved = np.abs(drawn[mask] - original[mask]).sum(axis=1) > 0
        assert moved.mean() > 0.9, f"mask of {label} not drawn"
        # the box is drawn: most of its left edge has the tag's colour (labels of other boxes may cover some)
        x0 = int(np.floor(x))
        rows_y, col = slice(int(np.ceil(y)), int(y + h)), min(x0, original.shape[1] - 1)
        color = np.array(tag_color(label))
        to_drawn = np.abs(drawn[rows_y, col] - color).sum(axis=1)
        to_original = np.abs(original[rows_y, col] - color).sum(axis=1)
        # most of the edge is in the tag's colour, or close to it where another region's mask is blended over it
        # (other boxes' labels may cover some of it)
        assert ((to_drawn == 0) | (to_drawn * 2 < to_original)).mean() > 0.5, f"box of {label} not drawn"
    assert json.loads(coco_path.read_text())["categories"], "categories are listed"
    assert (ARTIFACTS / "demo_page.png").stat().st_size > 10_000
