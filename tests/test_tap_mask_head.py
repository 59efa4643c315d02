"""The registered TAP mask head: tiny random pipeline, stage-level parity, prompts and errors."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from grounding.tap import TAPMaskHead
from grounding.tap.concepts import ConceptMatrix, save_concept_matrix
from grounding.tap.predictor import select_mask_index
from grounding.tap.transforms import compute_resize, resize_and_pad
from openvocab.hub import MissingFileError
from openvocab.registry import MASK_HEADS
from openvocab.structures import Detections


def _image(h=90, w=130, seed=0):
    return (np.random.RandomState(seed).rand(h, w, 3) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_head():
    head = MASK_HEADS.build(dict(type="TAPMaskHead", variant="tiny", checkpoint=None, concepts=None,
                                 max_caption_tokens=5))
    head.setup("cpu")
    return head


@pytest.fixture(scope="module")
def fixture_a(parity_dir):
    return torch.load(parity_dir / "tap" / "tap_tiny_A.pt", map_location="cpu", weights_only=True)


def _decode(rle):
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


def test_tiny_random_pipeline_needs_no_files(tiny_head):
    tiny_head.set_image(_image())
    boxes = np.array([[10, 10, 60, 50], [0, 0, 129, 89], [70.5, 20, 120, 80]], np.float32)
    r = tiny_head.predict(boxes=boxes)
    assert len(r) == 3 and r.concepts is None and len(r.captions) == 3
    assert all(isinstance(c, str) for c in r.captions)
    for rle in r.masks:
        assert rle["size"] == [90, 130] and isinstance(rle["counts"], str)
        assert _decode(rle).shape == (90, 130)
    assert r.mask_scores.dtype == np.float32
    # deterministic: same seed, same weights, same outputs
    again = TAPMaskHead(variant="tiny", checkpoint=None, concepts=None, max_caption_tokens=5)
    again.setup("cpu")
    again.set_image(_image())
    r2 = again.predict(boxes=boxes)
    assert r2.masks == r.masks and r2.captions == r.captions
    np.testing.assert_array_equal(r2.mask_scores, r.mask_scores)


def test_prompt_batches_and_points(tiny_head):
    tiny_head.set_image(_image(seed=1))
    boxes = np.array([[5, 5, 40, 40], [20, 30, 100, 80], [0, 0, 129, 89], [60, 10, 90, 85]], np.float32)
    whole = tiny_head.predictor.predict(boxes=boxes)
    tiny_head.predictor.prompt_batch_size = 3
    try:
        split = tiny_head.predictor.predict(boxes=boxes)
    finally:
        tiny_head.predictor.prompt_batch_size = 64
    np.testing.assert_array_equal(whole.masks, split.masks)
    np.testing.assert_allclose(whole.scores, split.scores, atol=1e-6)
    assert whole.captions == split.captions
    assert (whole.mask_index == 0).all()
    pts = tiny_head.predictor.predict(points=np.array([[[30, 40]], [[100, 60]]], np.float32),
                                      point_labels=np.array([[1], [1]]))
    assert set(pts.mask_index.tolist()) <= {1, 2, 3}
    np.testing.assert_allclose(pts.scores, pts.iou_pred[np.arange(2), pts.mask_index])
    np.testing.assert_allclose(pts.scores, pts.iou_pred[:, 1:].max(1))


def test_select_mask_index_rule():
    iou = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.9, 0.1, 0.5, 0.7], [0.1, 0.2, 0.3, 0.4]])
    labels = torch.tensor([[2, 3], [1, 4], [0, 1]])
    assert select_mask_index(iou, labels).tolist() == [0, 3, 3]
    assert select_mask_index(iou, labels, 2).tolist() == [2, 2, 2]
    with pytest.raises(ValueError):
        select_mask_index(iou, labels, 4)


def test_resize_and_pad_official_rules():
    info = compute_resize(300, 200, 192)
    assert info.scale == pytest.approx(0.64) and info.input_size == (192, 128)
    info2 = compute_resize(240, 400, 192)
    assert info2.scale == pytest.approx(0.48) and info2.input_size == (115, 192)
    canvas = resize_and_pad(_image(240, 400), info2, (103.53, 116.28, 123.675))
    assert canvas.shape == (192, 192, 3) and canvas[115:].reshape(-1, 3).tolist()[0] == [103, 116, 123]
    assert (canvas[115:] == np.array([103, 116, 123], np.uint8)).all()


def test_stage_parity_with_fixture(fixture_a, tmp_path):
    """Official pickle checkpoint + concept file through the registered stage (RGB in, RLE out)."""
    cfg, out = fixture_a["config"], fixture_a["outputs"]
    ckpt = tmp_path / "tap_tiny.pkl"
    with open(ckpt, "wb") as f:
        pickle.dump({k: v.numpy() for k, v in fixture_a["state_dict"].items()}, f)
    concepts = tmp_path / "concepts.pt"
    save_concept_matrix(ConceptMatrix(weights=out["concept_weights"], names=tuple(out["concept_names"])),
                        concepts)
    head = TAPMaskHead(variant="tiny", checkpoint=str(ckpt), concepts=str(concepts), caption=False,
                       top_k_concepts=5, model_kwargs=dict(
                           image_size=cfg["image_size"], encoder_depth=cfg["vit_depth"],
                           encoder_embed_dim=cfg["vit_embed_dim"], encoder_num_heads=cfg["vit_num_heads"],
                           window_size=cfg["window_size"], embed_dim=cfg["image_embed_dim"],
                           decoder_num_heads=cfg["decoder_num_heads"], decoder_mlp_dim=2048,
                           sem_embed_dim=cfg["sem_embed_dim"], text_embed_dim=cfg["text_embed_dim"],
                           text_num_heads=cfg["text_num_heads"], text_depth=cfg["text_depth"],
                           text_seq_len=cfg["text_seq_len"], vocab_size=cfg["vocab_size"]))
    head.setup("cpu")
    call = out["calls"]["box"]
    for img_i in range(2):
        rgb = out["images_raw"][img_i].numpy()[..., ::-1]  # fixture images are BGR
        head.set_image(rgb)
        rows = slice(3 * img_i, 3 * img_i + 3)
        boxes = call["points"][rows, :, :2].reshape(3, 4).numpy() / np.float32(out["img_scales"][img_i])
        r = head.predict(boxes=boxes)
        np.testing.assert_allclose(r.mask_scores, call["iou_pred"][rows, 0].numpy(), atol=1e-5)
        for rle, want in zip(r.masks, call["masks_final_original_size"][rows]):
            got = _decode(rle)
            assert (got != want.numpy()).sum() == 0
        for concepts, idx, prob in zip(r.concepts, call["concept_top5_index"][rows],
                                       call["concept_top5_prob"][rows]):
            assert [c.name for c in concepts] == [out["concept_names"][i] for i in idx.tolist()]
            np.testing.assert_allclose([c.score for c in concepts], prob.numpy(), atol=1e-5)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a & b).sum((1, 2)) / np.maximum((a | b).sum((1, 2)), 1)


def test_bfloat16_close_to_float32():
    """bf16 weights (dtype="bfloat16") and fp32 weights under CPU bf16 autocast (the pipeline's
    --precision bf16) both give masks, scores, concepts and captions close to fp32."""
    boxes = np.array([[10, 10, 80, 70], [30, 5, 125, 85], [0, 0, 129, 89]], np.float32)
    kw = dict(variant="tiny", checkpoint=None, max_caption_tokens=4,
              concepts=dict(names=["cat", "dog", "car", "tree", "sky"], text_encoder="random"))
    preds = {}
    for dt in ("float32", "bfloat16"):
        h = TAPMaskHead(dtype=dt, **kw)
        h.setup("cpu")
        assert h.predictor.model.dtype == (torch.bfloat16 if dt == "bfloat16" else torch.float32)
        h.set_image(_image(seed=2))
        preds[dt] = h.predictor.predict(boxes=boxes)
        if dt == "float32":
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                h.set_image(_image(seed=2))
                preds["autocast"] = h.predictor.predict(boxes=boxes)
    ref = preds["float32"]
    assert 0.2 < ref.masks.mean() < 0.9  # non-trivial masks
    for name in ("bfloat16", "autocast"):
        p = preds[name]
        assert p.masks.shape == ref.masks.shape and p.masks.dtype == bool
        assert _iou(p.masks, ref.masks).min() > 0.97, name
        np.testing.assert_allclose(p.scores, ref.scores, atol=0.02)
        np.testing.assert_allclose(p.concept_scores, ref.concept_scores, atol=0.05)
        assert len(p.captions) == 3 and all(isinstance(c, str) for c in p.captions)
    r = TAPMaskHead(caption=False, dtype="bfloat16", **kw)
    r.setup("cpu")
    r.set_image(_image(seed=2))
    assert r.predict(boxes=boxes).captions is None


def test_segment_detections(tiny_head):
    det = Detections(boxes=np.array([[1, 2, 50, 60]], np.float32), scores=np.array([0.9], np.float32),
                     labels=("cat",))
    r = tiny_head.segment(_image(), det)
    assert len(r) == 1 and r.masks[0]["size"] == [90, 130]
    assert len(tiny_head.segment(_image(), Detections())) == 0


def test_bad_inputs(tiny_head):
    with pytest.raises(ValueError):
        TAPMaskHead(variant="vit_x")
    with pytest.raises(ValueError):
        TAPMaskHead(variant="vit_b", checkpoint="tap_vit_l_v1_1")
    with pytest.raises(ValueError):
        TAPMaskHead(variant="tiny", checkpoint=None, multimask="best")
    with pytest.raises(ValueError, match="setup"):
        TAPMaskHead(variant="tiny", checkpoint=None).set_image(_image())
    with pytest.raises(ValueError):
        tiny_head.set_image(np.zeros((10, 10), np.uint8))
    tiny_head.set_image(_image())
    with pytest.raises(ValueError):
        tiny_head.predict(boxes=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError):
        tiny_head.predict()
    with pytest.raises(ValueError):
        tiny_head.predict(points=np.zeros((2, 1, 2), np.float32), point_labels=np.zeros((2, 2)))
    with pytest.raises(ValueError):
        tiny_head.predict(points=np.zeros((1, 1, 2), np.float32), point_labels=np.array([[5]]))


def test_official_files_resolved_in_setup_not_init(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENVOCAB_CACHE", str(tmp_path))
    monkeypatch.setenv("OPENVOCAB_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    head = TAPMaskHead()  # vit_l + merged_2560 + official tokenizer: no I/O yet
    assert any("tap_vit_l_v1_1.pkl" in f for f in head.required_files())
    with pytest.raises(MissingFileError, match="text_tokenizer.model"):
        head.setup("cpu")
