"""Batched across the chain, counted (never timed): the mask head's image encoder runs only for images with
detections, a --vocab job text-encodes its vocabulary once per chunk, and loader-side preparation gives the
same results as the stages preparing for themselves."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from openvocab.cli import resolve_config
from openvocab.engine import run_job
from openvocab.build import build_pipeline
from openvocab.pipeline import Pipeline
from openvocab.structures import ImageInfo

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def tiny_cfg():
    return Config.fromfile(str(resolve_config("tiny_random")))


def _images(n, seed=0, size=(48, 64)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(n)]


def test_mask_head_encodes_only_images_with_detections(tiny_cfg, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    import toy_plugin  # noqa: F401  (BrightnessTagger: bright images get a boxable tag, dark ones none)

    pipe = Pipeline(tagger=dict(type="BrightnessTagger"),
                    boxable_filter=dict(type="ListBoxableFilter", not_boxable=["bright", "dark"]),
                    detector=tiny_cfg.detector.to_dict(), mask_head=dict(tiny_cfg.mask_head.to_dict(), image_batch_size=2))
    pipe.setup()
    calls = []
    hook = pipe.mask_head.predictor.model.image_encoder.register_forward_hook(
        lambda m, i, o: calls.append(i[0].shape[0]))
    bright = [np.full((40, 56, 3), 230, np.uint8) + np.uint8(k) for k in range(3)]
    dark = [np.full((40, 56, 3), 10, np.uint8) for _ in range(4)]
    images = [dark[0], bright[0], dark[1], bright[1], dark[2], dark[3], bright[2]]
    try:
        results = pipe(images, [ImageInfo(f"{i}.png", 56, 40) for i in range(len(images))])
    finally:
        hook.remove()
    with_boxes = [i for i, r in enumerate(results) if len(r.detections)]
    assert with_boxes == [1, 3, 6]
    assert calls == [2, 1] and pipe.mask_head.encoded_images == 3  # 3 images, in batches of 2, never a dark one
    assert all(len(r.regions) == len(r.detections) for r in results)
    # each image's masks are the ones it gets alone (set_image/predict, the interactive path)
    for i in with_boxes:
        pipe.mask_head.set_image(images[i])
        alone = pipe.mask_head.predict(boxes=results[i].detections.boxes)
        assert alone.masks == results[i].regions.masks
        np.testing.assert_allclose(alone.mask_scores, results[i].regions.mask_scores, atol=1e-5)


def test_vocab_job_text_encodes_once_per_chunk_not_per_image(tiny_cfg, tmp_path):
    vocab = [f"thing {i}" for i in range(150)]
    pipe = build_pipeline(tiny_cfg, vocabulary=vocab)
    d = tmp_path / "imgs"
    d.mkdir()
    for i, im in enumerate(_images(5, size=(40, 40))):
        Image.fromarray(im).save(d / f"{i}.png")
    pipe.setup()
    bert_calls = []
    hook = pipe.detector.model.bert.register_forward_hook(lambda m, i, o: bert_calls.append(1))
    try:
        summary = run_job(pipe, [str(d)], tmp_path / "out", batch_size=2, workers=2, progress=False)
    finally:
        hook.remove()
    chunks = pipe.detector.chunker(vocab)
    assert summary.labeled == 5 and len(chunks) >= 2
    assert len(bert_calls) == len(chunks) == pipe.detector.text_cache.encodes
    assert pipe.detector.chunker.builds == 1
    coco = json.loads((tmp_path / "out" / "coco.json").read_text())
    assert [c["name"] for c in coco["categories"]] == vocab  # the vocabulary's order is the class numbering


def test_loader_prepared_inputs_give_the_same_results(tiny_cfg, tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i, im in enumerate(_images(4, seed=3, size=(60, 90))):
        Image.fromarray(im).save(d / f"{i}.png")
    outs = {}
    for workers in (0, 2):  # 0: each stage preprocesses itself; 2: loader threads prepare for every stage
        out = tmp_path / f"out{workers}"
        pipe = build_pipeline(tiny_cfg)
        assert run_job(pipe, [str(d)], out, workers=workers, batch_size=2, progress=False).labeled == 4
        outs[workers] = [json.loads(l) for l in (out / "labels.jsonl").read_text().splitlines()]
    for a, b in zip(outs[0], outs[2]):
        assert [t["name"] for t in a["tags"]] == [t["name"] for t in b["tags"]]
        assert [x["label"] for x in a["detections"]] == [x["label"] for x in b["detections"]]
        np.testing.assert_allclose([x["box"] for x in a["detections"]], [x["box"] for x in b["detections"]],
                                   atol=1e-4)
        assert [x["mask"] for x in a["detections"]] == [x["mask"] for x in b["detections"]]


def test_loader_keeps_input_order_and_bounds_read_ahead(tmp_path):
    import threading
    import time

    from openvocab.engine.loader import ImageLoader, LoadedImage, LoadFailure
    from openvocab.inputs import collect_inputs

    d = tmp_path / "imgs"
    d.mkdir()
    for i, im in enumerate(_images(12, size=(8, 8))):
        Image.fromarray(im).save(d / f"{i:02d}.png")
    (d / "05.png").write_bytes(b"broken")
    items, _ = collect_inputs([str(d)])
    busy, peak, lock = [0], [0], threading.Lock()

    def prepare(image):
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        time.sleep(0.01)
        with lock:
            busy[0] -= 1
        return image.shape

    loaded = []
    for x in ImageLoader(items, workers=3, prefetch=4, prepare=prepare):
        loaded.append(x)
        time.sleep(0.005)
    assert [Path(x.item.file).name for x in loaded] == [f"{i:02d}.png" for i in range(12)]
    assert isinstance(loaded[5], LoadFailure) and "not an image" in loaded[5].error
    assert all(isinstance(x, LoadedImage) and x.prepared == (8, 8, 3) for k, x in enumerate(loaded) if k != 5)
    assert peak[0] <= 3
