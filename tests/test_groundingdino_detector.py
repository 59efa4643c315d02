"""Grounding DINO detector stage: label assignment, phrases, NMS, chunked vocabularies (tiny random model)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from grounding.groundingdino.detector import GroundingDINODetector
from grounding.groundingdino.postprocess import (char_span_to_token_span, cxcywh_to_xyxy_pixels, nms_detections,
                                                 phrase_spans, tag_scores)
from openvocab.registry import DETECTORS
from openvocab.structures import Prompt, TagSpan


def _prompt(names):
    cap, spans = "", []
    for n in names:
        spans.append(TagSpan(n, len(cap), len(cap) + len(n)))
        cap += n + " . "
    return Prompt(cap.strip(), tuple(spans))


def _chunks(names, count, limit):
    out, cur = [], []
    for n in names:
        if cur and count(_prompt(cur + [n]).caption) > limit:
            out.append(_prompt(cur))
            cur = []
        cur.append(n)
    if cur:
        out.append(_prompt(cur))
    return out


@pytest.fixture(scope="module")
def det():
    torch.set_num_threads(2)
    d = DETECTORS.build(dict(type="GroundingDINODetector", variant="tiny", checkpoint=None, resize=(96, 160),
                             box_threshold=0.0, text_threshold=0.0, nms_iou=None))
    d.setup("cpu")
    return d


def test_postprocess_hand_values():
    b = cxcywh_to_xyxy_pixels(torch.tensor([[0.5, 0.5, 0.2, 0.4]]), 100, 200)
    torch.testing.assert_close(b, torch.tensor([[80.0, 30.0, 120.0, 70.0]]))
    offs = [(0, 0), (0, 3), (4, 5), (6, 10), (11, 18), (19, 20), (0, 0)]  # "[CLS] cat . fire hydrant . [SEP]"
    assert char_span_to_token_span(offs, 6, 18) == [3, 4]
    probs = torch.zeros(2, 256)
    probs[0, 1], probs[0, 4] = 0.3, 0.6
    probs[1, 1], probs[1, 3] = 0.9, 0.2
    ts = tag_scores(probs, [[1], [3, 4]])
    torch.testing.assert_close(ts, torch.tensor([[0.3, 0.6], [0.9, 0.2]]))
    cap = "a person riding a horse . tree ."
    offs2 = [(0, 0), (0, 1), (2, 8), (9, 12), (12, 15), (16, 17), (18, 23), (24, 25), (26, 30), (31, 32), (0, 0)]
    p = torch.zeros(256)
    p[[2, 3, 4, 8]] = 0.9
    assert phrase_spans(p, offs2, cap, 0.5) == "person riding tree"
    keep = nms_detections(torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10.0]]), torch.tensor([0.9, 0.8, 0.7]),
                          torch.tensor([0, 0, 1]), iou=0.5, agnostic_iou=None)
    assert keep.tolist() == [0, 2]
    keep = nms_detections(torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10.0]]), torch.tensor([0.9, 0.8, 0.7]),
                          torch.tensor([0, 0, 1]), iou=0.5, agnostic_iou=0.5)
    assert keep.tolist() == [0]


def test_ctor_validation():
    with pytest.raises(ValueError):
        GroundingDINODetector(variant="huge")
    with pytest.raises(ValueError):
        GroundingDINODetector(box_threshold=1.5)


def test_labels_are_best_scoring_tags(det):
    im = np.random.RandomState(0).randint(0, 255, (70, 120, 3), dtype=np.uint8)
    pr = _prompt(["cat", "fire hydrant", "dog"])
    (r,) = det.detect([im], [[pr]])
    assert len(r) == 30 and set(r.labels) <= {"cat", "fire hydrant", "dog"}
    assert r.boxes.dtype == np.float32 and (r.boxes[:, 2] >= r.boxes[:, 0]).all()
    batch, tb, logits, boxes = det._forward([im], [pr.caption])
    probs = logits[0].sigmoid()
    spans = [char_span_to_token_span(tb.offsets[0], s.start, s.end) for s in pr.spans]
    best = tag_scores(probs, spans).argmax(-1)
    order = torch.argsort(probs.max(-1)[0], descending=True)
    assert list(r.labels) == [pr.spans[k].name for k in best[order].tolist()]
    np.testing.assert_allclose(r.scores, probs.max(-1)[0][order].numpy(), atol=1e-6)


def test_batched_detect_equals_single(det):
    rs = np.random.RandomState(1)
    a = rs.randint(0, 255, (70, 120, 3), dtype=np.uint8)
    b = rs.randint(0, 255, (70, 120, 3), dtype=np.uint8)  # same size: no image padding, only text padding
    pa, pb = _prompt(["cat", "dog"]), _prompt(["a red car", "tree", "person"])
    both = det.detect([a, b], [[pa], [pb]])
    single = det.detect([b], [[pb]])[0]
    assert both[1].labels == single.labels
    np.testing.assert_allclose(both[1].boxes, single.boxes, atol=1e-3)
    np.testing.assert_allclose(both[1].scores, single.scores, atol=1e-5)


def test_thousand_tag_vocabulary_is_chunked(det):
    names = [f"tag{i}" for i in range(1000)]
    chunks = _chunks(names, det.count_tokens, det.max_text_tokens)
    assert len(chunks) > 1 and all(det.count_tokens(c.caption) <= 256 for c in chunks)
    im = np.random.RandomState(2).randint(0, 255, (64, 64, 3), dtype=np.uint8)
    d2 = GroundingDINODetector(variant="tiny", checkpoint=None, resize=(64, 64), box_threshold=0.0,
                               text_threshold=0.0, nms_iou=None, max_detections=10_000)
    d2.setup("cpu")
    (r,) = d2.detect([im], [chunks])
    assert len(r) == 30 * len(chunks)  # every chunk ran and was merged
    assert set(r.labels) <= set(names)
    assert np.all(np.diff(r.scores) <= 0)


def test_free_text_phrases_are_caption_spans(det):
    im = np.random.RandomState(3).randint(0, 255, (50, 80, 3), dtype=np.uint8)
    (r,) = det.detect_text([im], ["The man riding a horse"])
    cap = "the man riding a horse."
    assert len(r) == 30
    for ph in r.phrases:
        assert "##" not in ph
        for part in ph.split(" "):
            assert part in cap.split(" ") or part + "." in cap.split(" ")


@pytest.mark.parametrize("layout", ["official", "hf"])
def test_detector_loads_released_formats_and_matches_predict(parity_dir, tmp_path, layout):
    from safetensors.torch import save_file

    d = parity_dir / "grounding_dino"
    fix = torch.load(d / "gdino_tiny_A.pt", weights_only=True)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(fix["vocab_txt"])
    if layout == "official":
        ckpt = tmp_path / "groundingdino_tiny.pth"
        torch.save({"model": {"module." + k: v for k, v in fix["state_dict"].items()}}, ckpt)
    else:
        ckpt = tmp_path / "model.safetensors"
        hf = torch.load(d / "gdino_tiny_A_hf.pt", weights_only=True)["state_dict"]
        # like save_model: one copy of the tied box heads is kept
        keep = {k: v.clone() for k, v in hf.items() if not k.startswith("bbox_embed.")
                and not k.startswith("model.decoder.bbox_embed.1.")}
        save_file(keep, str(ckpt))
    case = fix["predict"][0]
    det = GroundingDINODetector(variant="tiny", checkpoint=str(ckpt), vocab=str(vocab),
                                box_threshold=case["box_threshold"], text_threshold=case["text_threshold"])
    det.setup("cpu")
    (r,) = det.detect_text([fix["raw_images"][case["image_name"]].numpy()], [case["caption_raw"]])
    np.testing.assert_allclose(r.boxes, case["xyxy_pixels"].numpy(), atol=1e-2)
    np.testing.assert_allclose(r.scores, case["scores"].numpy(), atol=1e-4)
    # phrases are caption text (official decodes word pieces; here the same tokens, as caption spans)
    assert all(p.replace(" ", "") == o.replace(" ", "") for p, o in zip(r.phrases, case["phrases"]))
