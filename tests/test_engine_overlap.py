"""The streamed engine finishes one batch (mask head) on its mask thread while the calling thread locates the
next one (tagger, detector): observed with events, never timed. Results, their order and per-image failures
are the same as in the one-at-a-time mode. On the CPU the steps' model calls take turns (one at a time, each with
every core), and the rest of the steps still overlaps."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvocab.engine import run_job
from openvocab.pipeline import Pipeline

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    import toy_plugin

    return toy_plugin


def _folder(tmp_path, widths):
    d = tmp_path / "imgs"
    d.mkdir()
    for i, w in enumerate(widths):
        Image.fromarray(np.full((30, w, 3), 200 + i, np.uint8)).save(d / f"{i:02d}.png")
    return d


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]


def _failures(out: Path) -> list[tuple[str, str]]:
    path = out / "failures.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return sorted((Path(r["file"]).name, r["error"]) for r in map(json.loads, lines))


def test_mask_stage_of_one_batch_overlaps_locating_the_next(toy, tmp_path):
    seen_second = threading.Event()
    threads = {"detector": set(), "mask_head": set()}
    overlapped = []

    class WatchedDetector(toy.CentreBoxDetector):
        def detect(self, images, tag_names, prepared=None):
            threads["detector"].add(threading.current_thread().name)
            if images[0].shape[1] == 41:  # the second image is being located
                seen_second.set()
            return super().detect(images, tag_names, prepared)

    class WaitingMaskHead(toy.BoxMaskHead):
        wait = True

        def segment_batch(self, images, detections, prepared=None):
            threads["mask_head"].add(threading.current_thread().name)
            if self.wait and images[0].shape[1] == 40:  # finishing the first image waits for the second's locating
                overlapped.append(seen_second.wait(timeout=60))
            return super().segment_batch(images, detections, prepared)

    d = _folder(tmp_path, [40, 41, 42, 43, 44])
    outs = {}
    for workers in (2, 0):
        WaitingMaskHead.wait = workers > 0  # one at a time, the wait could only time out
        # cpu_turns=False: these toy calls wait on each other, as calls to a remote service would (on the CPU,
        # model calls take turns by default: the next test)
        pipe = Pipeline(tagger=dict(type="BrightnessTagger"), detector=WatchedDetector(), mask_head=WaitingMaskHead(),
                        cpu_turns=False)
        summary = run_job(pipe, [str(d)], tmp_path / f"out{workers}", workers=workers, batch_size=1, progress=False)
        assert summary.labeled == 5
        outs[workers] = _records(tmp_path / f"out{workers}")
    assert overlapped == [True]
    assert threads["mask_head"] >= {"openvocab-finish_0", "MainThread"}  # streamed: mask thread; workers=0: inline
    assert "openvocab-finish_0" not in threads["detector"]
    assert [Path(r["file"]).name for r in outs[2]] == [f"{i:02d}.png" for i in range(5)]  # input order
    assert outs[2] == outs[0]
    assert all(len(r["detections"]) == 2 and all(x["mask"] for x in r["detections"]) for r in outs[2])



def test_model_calls_on_the_cpu_take_turns_while_the_steps_overlap(toy, tmp_path):
    """With every step on its own thread, no two stages run their model at once on the CPU (the turn), and the
    results are the one-at-a-time mode's."""
    import time

    lock = threading.Lock()
    inside, most, threads = [0], [0], set()

    def counted(call):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            threads.add(threading.current_thread().name)
        try:
            time.sleep(0.02)  # long enough for another step's call to come in, were it allowed
            return call()
        finally:
            with lock:
                inside[0] -= 1

    class Tagger(toy.BrightnessTagger):
        def tag(self, images, prepared=None):
            return counted(lambda: super(Tagger, self).tag(images))

    class Detector(toy.CentreBoxDetector):
        def detect(self, images, tag_names, prepared=None):
            return counted(lambda: super(Detector, self).detect(images, tag_names, prepared))

    class MaskHead(toy.BoxMaskHead):
        def segment_batch(self, images, detections, prepared=None):
            return counted(lambda: super(MaskHead, self).segment_batch(images, detections, prepared))

    d = _folder(tmp_path, [40 + i for i in range(8)])
    outs = {}
    for workers in (2, 0):
        pipe = Pipeline(tagger=Tagger(), detector=Detector(), mask_head=MaskHead())
        assert run_job(pipe, [str(d)], tmp_path / f"out{workers}", workers=workers, progress=False).labeled == 8
        outs[workers] = _records(tmp_path / f"out{workers}")
    assert most[0] == 1  # never two model calls at once
    assert {"openvocab-tag_0", "openvocab-locate_0", "openvocab-finish_0"} <= threads  # yet each on its own step
    assert outs[2] == outs[0]

def test_a_failing_image_fails_alone_in_either_step(toy, tmp_path):
    class FlakyMaskHead(toy.BoxMaskHead):
        def segment_batch(self, images, detections, prepared=None):
            if any(im.shape[1] == 45 for im in images):
                raise RuntimeError("toy mask head failure")
            return super().segment_batch(images, detections, prepared)

    d = _folder(tmp_path, [40, 44, 45, 46, 47, 48, 49])  # 44 fails in the detector, 45 in the mask head
    (d / "07.png").write_bytes(b"not a picture")  # and one fails to load, among the batches in flight
    outs = {}
    for workers in (2, 0):
        pipe = Pipeline(tagger=dict(type="BrightnessTagger"), detector=toy.CentreBoxDetector(fail_on_width=44),
                        mask_head=FlakyMaskHead())
        out = tmp_path / f"out{workers}"
        summary = run_job(pipe, [str(d)], out, workers=workers, batch_size=2, progress=False)
        assert summary.labeled == 5 and len(summary.failed) == 3
        outs[workers] = (_records(out), _failures(out))
    records, failures = outs[2]
    assert [Path(r["file"]).name for r in records] == ["00.png", "03.png", "04.png", "05.png", "06.png"]
    assert [name for name, _ in failures] == ["01.png", "02.png", "07.png"]
    assert failures[0][1].startswith("pipeline error") and "toy detector failure" in failures[0][1]
    assert failures[1][1].startswith("pipeline error") and "toy mask head failure" in failures[1][1]
    assert "not an image" in failures[2][1]
    assert outs[2] == outs[0]
