"""``openvocab detect "free text" IMAGE`` with a tiny random Grounding DINO config."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from grounding.groundingdino.detector import GroundingDINODetector
from openvocab.boxes import clip_detections
from openvocab.cli import main

CONFIG = """custom_imports = dict(imports=['grounding'], allow_failed_imports=False)
detector = dict(type='GroundingDINODetector', variant='tiny', checkpoint=None, box_threshold=0.5,
                text_threshold=0.5, resize=(96, 160), seed=3)
"""
TEXT = "The man in a red shirt riding a horse"


def test_detect_free_text_cli(tmp_path, shared_dir, capsys):
    cfg = tmp_path / "gdino_tiny.py"
    cfg.write_text(CONFIG)
    photo = shared_dir / "images" / "demo4.jpg"
    rc = main(["detect", TEXT, str(photo), str(tmp_path / "missing.jpg"), "--config", str(cfg), "--json"])
    captured = capsys.readouterr()
    assert rc == 1 and "missing.jpg: ERROR" in captured.err  # the missing file fails, the photo is done
    (row,) = [json.loads(line) for line in captured.out.splitlines()]
    assert row["file"] == str(photo) and row["text"] == TEXT
    w, h = Image.open(photo).size
    dets = row["detections"]
    assert dets, "box_threshold 0.5 keeps some queries of the tiny random model"
    caption_words = "the man in a red shirt riding a horse".split()
    for d in dets:
        x0, y0, x1, y1 = d["box"]
        assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h  # original-image pixels, clipped
        assert 0.5 < d["score"] <= 1
        assert all(part in caption_words for part in d["phrase"].split()), d["phrase"]
    # the CLI prints exactly what the stage returns for the image
    det = GroundingDINODetector(variant="tiny", checkpoint=None, box_threshold=0.5, text_threshold=0.5,
                                resize=(96, 160), seed=3)
    det.setup("cpu")
    (ref,) = det.detect_text([np.asarray(Image.open(photo).convert("RGB"))], [TEXT])
    ref = clip_detections(ref, h, w)  # as the pipeline and the CLI clip every detector's boxes
    assert [d["phrase"] for d in dets] == list(ref.phrases)
    np.testing.assert_allclose([d["box"] for d in dets], ref.boxes, atol=0.01)

    assert main(["detect", TEXT, str(photo), "--config", str(cfg), "--precision", "bf16"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{photo}: ") and "boxes" in out.splitlines()[0]


def test_detect_never_builds_or_resolves_the_mask_head(tmp_path, shared_dir, capsys, monkeypatch):
    """``openvocab detect`` needs the detector only: a config whose mask head (official TAP ViT-L, not available
    offline) would fail the job is never built, so none of its files is looked up."""
    from grounding.tap.mask_head import TAPMaskHead

    cfg = tmp_path / "detect_with_tap.py"
    cfg.write_text(CONFIG + "mask_head = dict(type='TAPMaskHead', variant='vit_l', checkpoint='tap_vit_l_v1_1', "
                            "concepts='merged_2560')\n")
    built = []
    real_init = TAPMaskHead.__init__

    def spy_init(self, *a, **k):
        built.append(k)
        real_init(self, *a, **k)

    monkeypatch.setattr(TAPMaskHead, "__init__", spy_init)
    photo = shared_dir / "images" / "demo4.jpg"
    assert main(["detect", TEXT, str(photo), "--config", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["detections"]
    assert built == [], "detect built the mask head"  # so none of its files was looked up or downloaded

    # the same config labeling does build the mask head, and stops on its missing checkpoint
    rc = main(["label", str(photo), "--config", str(cfg), "--vocab", "man, horse", "--out", str(tmp_path / "o"),
               "--no-progress"])
    assert rc == 2 and built and "tap_vit_l" in capsys.readouterr().err
