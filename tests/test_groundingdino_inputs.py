"""Grounding DINO preprocessing, tokenisation and weight metadata against the official fixtures."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from grounding.groundingdino.preprocess import pad_batch, preprocess_images, resize_image, resized_hw, to_normalized_tensor
from grounding.groundingdino.tokenize import load_tokenizer, preprocess_caption, sub_sentence_mask, tokenize
from grounding.groundingdino.weights import WEIGHTS


@pytest.fixture(scope="module")
def pre(parity_dir):
    return torch.load(parity_dir / "grounding_dino" / "gdino_preprocess.pt", weights_only=True)


@pytest.fixture(scope="module")
def fix_a(parity_dir):
    return torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A.pt", weights_only=True)


@pytest.fixture(scope="module")
def tok(fix_a, tmp_path_factory):
    p = tmp_path_factory.mktemp("gdino_vocab") / "vocab.txt"
    p.write_text(fix_a["vocab_txt"])
    return load_tokenizer(str(p))


def test_resize_rule_hand_values():
    assert resized_hw(240, 320) == (800, 1066)
    assert resized_hw(300, 200) == (1200, 800)
    assert resized_hw(3, 86) == (46, 1318)  # round half to even
    assert resized_hw(7, 50) == (187, 1335)  # longer side may exceed max_size
    assert resized_hw(800, 1000) == (800, 1000)
    with pytest.raises(ValueError):
        resized_hw(0, 5)


def test_preprocess_matches_official(pre):
    for name, e in pre["images"].items():
        r = resize_image(e["raw"].numpy())
        np.testing.assert_array_equal(np.asarray(r), e["resized"].numpy(), err_msg=name)
        t = to_normalized_tensor(r)
        assert list(t.shape) == e["pixel_shape"]
        assert float(t.double().sum()) == pytest.approx(e["pixel_sum"], abs=1e-3)
        torch.testing.assert_close(t[:, ::16, ::16], e["pixel_strided"], rtol=0, atol=0)


def test_batch_padding_and_masks(pre):
    raws = [pre["images"]["A_img0"]["raw"].numpy(), pre["images"]["A_img1"]["raw"].numpy()]
    b = preprocess_images(raws)
    assert tuple(b.pixel_values.shape) == (2, 3, 1200, 1066)
    assert b.input_sizes == [(800, 1066), (1200, 800)]
    assert b.original_sizes == [(240, 320), (300, 200)]
    assert not b.pixel_mask[0, :800].any() and b.pixel_mask[0, 800:].all()
    assert not b.pixel_mask[1, :, :800].any() and b.pixel_mask[1, :, 800:].all()
    assert float(b.pixel_values[0, :, 800:].abs().sum()) == 0.0
    _, m = pad_batch([torch.ones(3, 2, 3)])
    assert not m.any()


def test_tokenize_batch_matches_official(fix_a, tok):
    b = fix_a["batch"]
    tb = tokenize(tok, b["captions"])
    assert torch.equal(tb.input_ids, b["input_ids"])
    assert torch.equal(tb.attention_mask, b["attention_mask"].bool())
    assert torch.equal(tb.text_self_attention_masks, b["text_self_attention_masks"])
    assert torch.equal(tb.position_ids, b["position_ids"])
    # offsets map tokens back to caption characters ("riding" -> rid ##ing)
    cap = b["captions"][1]
    pieces = [cap[s:e] for s, e in tb.offsets[1] if e > s]
    assert pieces[:5] == ["a", "person", "rid", "ing", "a"]


def test_tokenize_predict_cases(fix_a, tok):
    for p in fix_a["predict"]:
        cap = preprocess_caption(p["caption_raw"])
        assert cap == p["caption"]
        tb = tokenize(tok, [cap])
        assert torch.equal(tb.input_ids[0], p["input_ids"].view(-1))
        assert torch.equal(tb.position_ids[0], p["position_ids"].view(-1))
        assert torch.equal(tb.text_self_attention_masks[0], p["text_self_attention_masks"].view(tb.input_ids.shape[1], -1))


def test_sub_sentence_mask_hand_example():
    # [CLS] cat . dog . [SEP] [PAD] with ids CLS=1 SEP=2 .=3
    ids = torch.tensor([[1, 10, 3, 11, 3, 2, 0]])
    mask, pos = sub_sentence_mask(ids, [1, 2, 3])
    assert pos.tolist() == [[0, 0, 1, 0, 1, 0, 0]]
    assert mask[0, 1].tolist() == [False, True, True, False, False, False, False]
    assert mask[0, 5].tolist() == [False] * 5 + [True, False]
    assert mask[0, 6].tolist() == [False] * 6 + [True]


def test_weights_metadata():
    w = WEIGHTS["groundingdino_swint_ogc"]
    assert w.url.endswith("v0.1.0-alpha/groundingdino_swint_ogc.pth")
    assert WEIGHTS["groundingdino_swinb_cogcoor"].url.endswith("v0.1.0-alpha2/groundingdino_swinb_cogcoor.pth")
    # published digests of the released files (recorded only where known; the others stay None)
    assert w.sha256 == "3b3ca2563c77c69f651d7bd133e97139c186df06231157a64c507099c52bc799"
    assert WEIGHTS["groundingdino_swinb_cogcoor"].sha256 == (
        "46270f7a822e6906b655b729c90613e48929d0f2bb8b9b76fd10a856f3ac6ab7")
    assert all(WEIGHTS[k].sha256 is None for k in ("grounding-dino-tiny", "grounding-dino-base",
                                                   "bert-base-uncased-vocab"))
    # local names are distinct (checkpoint dirs and the cache are flat folders)
    assert len({v.filename for v in WEIGHTS.values()}) == len(WEIGHTS)
    assert WEIGHTS["grounding-dino-tiny"].hf_filename == "model.safetensors"


def test_tokenizer_vocab_is_resolved_like_checkpoints(fix_a, tmp_path, monkeypatch):
    from grounding.groundingdino.detector import GroundingDINODetector
    from openvocab.hub import MissingFileError

    monkeypatch.setenv("OPENVOCAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENVOCAB_CHECKPOINT_DIR", str(tmp_path / "none"))
    det = GroundingDINODetector(variant="swint_ogc", checkpoint=None)  # bert-base-uncased vocab, not built yet
    assert det.required_files() == ["bert-base-uncased-vocab.txt"]
    with pytest.raises(MissingFileError, match="bert-base-uncased-vocab.txt"):
        det.count_tokens("cat .")
    (tmp_path / "ckpts").mkdir()
    (tmp_path / "ckpts" / "bert-base-uncased-vocab.txt").write_text(fix_a["vocab_txt"])
    monkeypatch.setenv("OPENVOCAB_CHECKPOINT_DIR", str(tmp_path / "ckpts"))
    assert det.count_tokens("cat . dog .") == 6  # [CLS] cat . dog . [SEP]
