"""The demo's "Find all like this" tab driven in a real headless Chromium (Playwright, Debian's ``chromium``; flags
as in ``test_demo_browser.py``): ``openvocab demo --config tiny_examples`` is started (this checkout's demo), a
picture is uploaded, a box is drawn on it by clicking two of its corners, two more pictures are uploaded as the
folder to search, and "Find all like this" brings boxes back on the page: drawn in the gallery, listed in the
table, and in the downloaded COCO JSON. Every wait is on the page's own state."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from test_demo_browser import ARTIFACTS, CHROMIUM_FLAGS, _chromium, _free_port, _status

ROOT = Path(__file__).resolve().parents[1]
PICTURES = sorted((ROOT / "demo" / "images").glob("*.jpg"))
BOXES = "#ov-ex-boxes div[role='row'].virtual-row"
FOUND = "#ov-ex-found div[role='row'].virtual-row"
#: the canvas shows its picture (loaded, full size)
LOADED = "s => { const i = document.querySelector(s); return !!i && i.complete && i.naturalWidth === 640; }"
#: page coordinates of an image pixel of the canvas (the picture is shown scaled, centred in its element)
TO_PAGE = """([sel, x, y]) => {
  const img = document.querySelector(sel); const r = img.getBoundingClientRect();
  const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
  const left = r.left + (r.width - img.naturalWidth * s) / 2, top = r.top + (r.height - img.naturalHeight * s) / 2;
  return [left + (x + 0.5) * s, top + (y + 0.5) * s];
}"""


@pytest.fixture()
def server(tmp_path):
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(tmp_path / "gr"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "checkout_demo.py"), "demo", "--config",
                             "tiny_examples", "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
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
                time.sleep(1)  # polling the server's start-up, not a wait on the page
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_draw_a_box_and_find_all_like_it(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300}, accept_downloads=True)
        page.goto(server)
        page.click("#ov-tab-examples-button")
        upload = page.locator("#ov-ex-upload input[type=file]")
        upload.wait_for(state="attached")
        upload.set_input_files(str(PICTURES[0]))
        assert "Click two opposite corners" in _status(page, "#ov-ex-status", "opposite corners")
        page.fill("#ov-ex-label textarea", "star")
        for k, (x, y) in enumerate([(114, 135), (289, 303)]):  # two opposite corners of the first star
            page.wait_for_function(LOADED, arg="#ov-ex-canvas img", timeout=60_000)  # the canvas as last drawn
            px, py = page.evaluate(TO_PAGE, ["#ov-ex-canvas img", x, y])
            page.mouse.click(px, py)
            _status(page, "#ov-ex-status", "Now click the opposite corner" if k == 0 else "1 box drawn")
        page.wait_for_function("([s, n]) => document.querySelectorAll(s).length === n", arg=[BOXES, 1], timeout=60_000)
        row = page.locator(BOXES).nth(0).locator("[role='gridcell']").all_inner_texts()
        assert row[1] == "star" and row[3] == "like this"
        assert [float(v) for v in row[2].split(",")] == pytest.approx([114, 135, 289, 303], abs=2)

        more = page.locator("#ov-ex-more input[type=file]")
        more.set_input_files([str(p) for p in PICTURES[1:3]])  # "a folder": several uploads
        for p in PICTURES[1:3]:  # both uploads listed by the field
            page.wait_for_selector(f"#ov-ex-more td.filename[aria-label='{p.name}']")
        page.click("#ov-ex-run")
        status = _status(page, "#ov-ex-status", "like the")
        found = re.search(r"(\d+) box(?:es)? like the 1 drawn in 3 images", status)
        assert found and int(found.group(1)) > 0, status
        n = int(found.group(1))
        page.wait_for_function("([s, n]) => document.querySelectorAll(s).length === n", arg=[FOUND, n],
                               timeout=60_000)
        rows = [page.locator(FOUND).nth(i).locator("[role='gridcell']").all_inner_texts() for i in range(n)]
        assert {r[1] for r in rows} == {"star"} and {r[0] for r in rows} <= {p.name for p in PICTURES[:3]}
        page.wait_for_function("s => document.querySelectorAll(s).length === 3", arg="#ov-ex-gallery img",
                               timeout=60_000)
        with page.expect_download() as download:
            page.click("#ov-ex-dl-coco")
        coco_path = tmp_path / "found.json"
        download.value.save_as(coco_path)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo_find_all.png"), full_page=True)
        browser.close()

    coco = COCO(str(coco_path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["star"]
    assert sorted(im["file_name"] for im in coco.loadImgs(coco.getImgIds())) == [p.name for p in PICTURES[:3]]
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == n
    for row, ann in zip(rows, sorted(anns, key=lambda a: a["id"])):
        x, y, w, h = ann["bbox"]
        assert [float(v) for v in row[3].split(",")] == pytest.approx([x, y, x + w, y + h], abs=0.06)
