"""Grounding DINO parity against the official fixture A (predict path, singles, batched = singles)."""
from __future__ import annotations

import json

import pytest
import torch

from grounding.groundingdino import verify
from grounding.groundingdino.convert import convert_state_dict
from grounding.groundingdino.model import build_from_official_config


@pytest.fixture(scope="module")
def fix_path(parity_dir):
    return parity_dir / "grounding_dino" / "gdino_tiny_A.pt"


@pytest.fixture(scope="module")
def fix_a(fix_path):
    return torch.load(fix_path, weights_only=True)


@pytest.fixture(scope="module")
def model(fix_a):
    torch.set_num_threads(2)
    meta = json.loads(fix_a["meta_json"])
    m = build_from_official_config(meta["config"], meta["bert_config"]).eval()
    # the way users load the released file: {'model': {'module.' + key: tensor}}
    m.load_state_dict(convert_state_dict({"model": {"module." + k: v for k, v in fix_a["state_dict"].items()}}),
                      strict=True)
    return m


def test_verify_cli_on_fixture(fix_path, tmp_path, capsys):
    from grounding.verify import main as dispatch  # python -m grounding.verify, dispatching on the kind

    out = tmp_path / "out.pt"
    assert dispatch([str(fix_path), "--save", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "predict[1].boxes_xyxy" in printed and "OK" in printed
    saved = torch.load(out, weights_only=True)
    assert len(saved["predict"]) == 2 and len(saved["singles"]) == 2
    assert saved["predict"][0]["pred_logits"].shape == (1, 30, 256)
    assert saved["predict"][0]["boxes_xyxy"].shape == (10, 4)
    assert saved["predict"][1]["scores"].shape == (6,)


def test_verify_without_stored_outputs(fix_a, model):
    stripped = dict(fix_a)
    stripped["predict"] = [{k: v for k, v in c.items() if k in ("image_name", "caption_raw", "box_threshold",
                                                                 "text_threshold")} for c in fix_a["predict"][:1]]
    b = fix_a["batch"]
    stripped["batch"] = {k: b[k] for k in ("pixel_values", "pixel_mask", "input_ids", "attention_mask",
                                           "text_self_attention_masks", "position_ids")}
    out, diffs = verify.run_fixture(stripped, model)
    assert diffs == []
    torch.testing.assert_close(out["predict"][0]["scores"], fix_a["predict"][0]["scores"], atol=1e-4, rtol=0)
    torch.testing.assert_close(out["singles"][1]["pred_boxes"], b["singles"][1]["pred_boxes"], atol=1e-4, rtol=0)


def test_batched_equals_singles(fix_a, model):
    b = fix_a["batch"]
    with torch.no_grad():
        o = model(b["pixel_values"], b["pixel_mask"], b["input_ids"], b["attention_mask"],
                  b["text_self_attention_masks"], b["position_ids"])
    for i in range(2):
        ref = b["singles"][i]
        fin = torch.isfinite(ref["pred_logits"])
        assert torch.equal(torch.isfinite(o.pred_logits[i : i + 1]), fin)
        torch.testing.assert_close(o.pred_logits[i : i + 1][fin], ref["pred_logits"][fin], atol=1e-4, rtol=0)
        torch.testing.assert_close(o.pred_boxes[i : i + 1], ref["pred_boxes"], atol=1e-4, rtol=0)
    # the official batched output (text-mask mix-up) is NOT what we produce
    assert (o.pred_logits[0][torch.isfinite(o.pred_logits[0])]
            - b["pred_logits"][0][torch.isfinite(b["pred_logits"][0])]).abs().max() > 1e-2


def test_intermediates_match(fix_a, model):
    b = fix_a["batch"]
    s = slice(0, 1)
    with torch.no_grad():
        feats = model.backbone(b["pixel_values"][s])
        for f, ref in zip(feats, b["backbone_features"]):
            torch.testing.assert_close(f, ref[s], atol=1e-5, rtol=0)
        txt = model.encode_text(b["input_ids"], b["text_self_attention_masks"], b["position_ids"])
        torch.testing.assert_close(txt, b["encoded_text_in"], atol=1e-5, rtol=0)


def _batch_only(fix_a, keep_outputs: bool) -> dict:
    b = fix_a["batch"]
    keys = ["pixel_values", "pixel_mask", "input_ids", "attention_mask", "text_self_attention_masks", "position_ids"]
    batch = {k: b[k] for k in keys}
    if keep_outputs:
        batch["singles"] = [dict(s) for s in b["singles"]]
    return {"meta_json": fix_a["meta_json"], "vocab_txt": fix_a["vocab_txt"],
            "state_dict": dict(fix_a["state_dict"]), "batch": batch}


def test_verify_main_without_outputs_and_beyond_tolerance(fix_a, tmp_path, capsys):
    from grounding.verify import main as dispatch

    bare = tmp_path / "bare.pt"
    torch.save(_batch_only(fix_a, keep_outputs=False), bare)
    # nothing stored to compare with: the check fails with one line saying so (and still saves)
    assert dispatch([str(bare), "--save", str(tmp_path / "o.pt")]) == 1
    assert capsys.readouterr().out.splitlines() == [f"FAIL: nothing compared: {bare} stores no outputs "
                                                    "(predict cases or batch singles)"]
    saved = torch.load(tmp_path / "o.pt", weights_only=True)
    torch.testing.assert_close(saved["singles"][0]["pred_boxes"], fix_a["batch"]["singles"][0]["pred_boxes"],
                               atol=1e-4, rtol=0)
    # a stored output off by 3e-4, or a slightly different weight: non-zero exit, the failing entry named
    off = _batch_only(fix_a, keep_outputs=True)
    off["batch"]["singles"][1]["pred_boxes"] = off["batch"]["singles"][1]["pred_boxes"] + 3e-4
    torch.save(off, tmp_path / "off.pt")
    assert dispatch([str(tmp_path / "off.pt")]) == 1
    printed = capsys.readouterr().out
    assert "singles[1].pred_boxes: max|diff| = 0.0003" in printed and "FAIL" in printed
    w = _batch_only(fix_a, keep_outputs=True)
    w["state_dict"]["transformer.decoder.norm.bias"] = w["state_dict"]["transformer.decoder.norm.bias"] + 0.05
    torch.save(w, tmp_path / "w.pt")
    assert dispatch([str(tmp_path / "w.pt")]) == 1
    # a state_dict that does not fit names the keys
    w["state_dict"].pop("feat_map.bias")
    torch.save(w, tmp_path / "w2.pt")
    assert dispatch([str(tmp_path / "w2.pt")]) == 1
    assert "missing keys: feat_map.bias" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="not a TAP, Grounding DINO or PSALM"):
        torch.save({"x": 1}, tmp_path / "junk.pt")
        dispatch([str(tmp_path / "junk.pt")])
