"""TAP parity: ``python -m grounding.verify`` on the official tiny fixture and other configs."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from torch.nn import functional as F

from grounding.tap import image_decoder, verify
from grounding.tap.image_encoder import relative_position_index, window_merge, window_partition
from grounding.tap.model import build_tap
from grounding.tap.text_decoder import apply_rotary_interleaved, generate_greedy, rotary_tables

CALL_KEYS = ("iou_pred", "mask_pred", "sem_embeds", "concept_logits_all_tokens",
             "caption_token_ids", "caption_step_logits")


@pytest.fixture(scope="module")
def fixture_a(parity_dir):
    return torch.load(parity_dir / "tap" / "tap_tiny_A.pt", map_location="cpu", weights_only=True)


def test_verify_cli_matches_fixture(parity_dir, tmp_path, capsys):
    from grounding.verify import main as dispatch

    out = tmp_path / "out.pt"
    rc = dispatch([str(parity_dir / "tap" / "tap_tiny_A.pt"), "--save", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "PASS" in text and "box.caption_token_ids: equal" in text
    assert "0 pixels differ" in text
    res = torch.load(out, weights_only=True)
    assert tuple(res["image_embeddings"].shape) == (2, 64, 12, 12)
    assert set(res["calls"]) == {"box", "point", "mixed"}
    for key in CALL_KEYS:
        assert key in res["calls"]["box"]
    assert tuple(res["calls"]["box"]["mask_pred"].shape) == (6, 4, 48, 48)
    assert tuple(res["calls"]["point"]["caption_step_logits"].shape) == (4, 14, 512)


def test_verify_reports_mismatch(fixture_a, tmp_path, capsys):
    fx = copy.deepcopy(fixture_a)
    sd = fx["state_dict"]
    sd["image_encoder.blocks.1.attn.rel_pos_embed.weight"] = sd["image_encoder.blocks.1.attn.rel_pos_embed.weight"] * 1.01
    path = tmp_path / "bad.pt"
    torch.save(fx, path)
    assert verify.main([str(path)]) == 1
    text = capsys.readouterr().out
    assert "image_embeddings" in text and "FAIL" in text
    # the official weights, one official output moved by 1e-3: that entry alone is named as failing
    fx = copy.deepcopy(fixture_a)
    fx["outputs"]["calls"]["mixed"]["caption_step_logits"] += 1e-3
    lines, ok = verify.compare(verify.run_fixture(fx), fx["outputs"], 1e-4)
    failing = [line for line in lines if "FAIL" in line]
    assert not ok and len(failing) == 1
    assert failing[0].startswith("mixed.caption_step_logits: max abs diff 1.0") and failing[0].endswith("e-03  FAIL")


def test_verify_without_outputs_fails_and_saves_the_official_outputs(fixture_a, tmp_path, capsys):
    """No stored outputs: nothing is compared, so the check fails (exit 1) with one clear line; ``--save``
    still writes what the model computes, which for the fixture's own inputs is the official output."""
    ref = fixture_a["outputs"]
    inputs_only = {"images_raw": ref["images_raw"], "concept_weights": ref["concept_weights"],
                   "concept_names": ref["concept_names"],
                   "calls": {name: {"points": call["points"]} for name, call in ref["calls"].items()}}
    path, out = tmp_path / "inputs_only.pt", tmp_path / "res.pt"
    torch.save(dict(fixture_a, outputs=inputs_only), path)
    assert verify.main([str(path), "--save", str(out)]) == 1
    assert capsys.readouterr().out.splitlines() == [f"saved outputs to {out}",
                                                    f"FAIL: nothing compared: {path} stores no model outputs"]
    res = torch.load(out, weights_only=True)
    # the official resize of these images is reproduced exactly, so the model sees the reference's pixels
    assert torch.equal(res["img_batch_uint8"], torch.as_tensor(ref["img_batch_uint8"]))
    torch.testing.assert_close(res["image_embeddings"], ref["image_embeddings"], atol=1e-4, rtol=0)
    for name, call in ref["calls"].items():
        for key in ("iou_pred", "mask_pred", "sem_embeds", "concept_logits_all_tokens", "caption_step_logits"):
            torch.testing.assert_close(res["calls"][name][key], call[key], atol=1e-4, rtol=0, msg=f"{name}.{key}")
        assert torch.equal(res["calls"][name]["caption_token_ids"], torch.as_tensor(call["caption_token_ids"]))
    # the official preprocessed tensor alone is no model output: still nothing compared
    lines, ok = verify.compare(res, {"img_preprocessed": ref["img_preprocessed"]}, 1e-4)
    assert not ok and lines == ["img_preprocessed: max abs diff 0.000e+00", verify.NOTHING_COMPARED]
    # no outputs at all (synthetic images and prompts): nothing compared either
    torch.save({k: v for k, v in fixture_a.items() if k != "outputs"}, path)
    assert verify.main([str(path), "--save", str(out)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == f"FAIL: nothing compared: {path} stores no model outputs"
    res = torch.load(out, weights_only=True)
    assert tuple(res["calls"]["box"]["iou_pred"].shape) == (6, 4)
    assert tuple(res["calls"]["mixed"]["caption_token_ids"].shape) == (2, 15)


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Like the official fixture: no parameter left at a constant default init."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm2d)):
            m.weight.data = 1 + 0.1 * torch.randn(m.weight.shape, generator=g)
            m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=g)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.data = 0.1 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var.data = 0.5 + torch.rand(m.running_var.shape, generator=g)
    for k, p in model.named_parameters():
        if k.endswith("rel_pos_embed.weight"):
            p.data = 0.5 * torch.randn(p.shape, generator=g)
    model.text_decoder.encoder.weight.data *= 4


def _naive_encoder(enc, x: torch.Tensor) -> torch.Tensor:
    """The encoder as NOTES.md 4.1 describes it, window by window with explicit loops."""
    b, ws, c = x.shape[0], enc.window_size, enc.embed_dim
    g = enc.grid
    t = enc.patch_embed.proj(x).permute(0, 2, 3, 1) + enc.pos_embed.weight.view(g, g, c)
    depth = len(enc.blocks)
    cross = [(depth // 4) * (k + 1) - 1 for k in range(4)]
    cells = [(i // ws, i % ws) for i in range(ws * ws)]  # row-major inside a window
    for i, blk in enumerate(enc.blocks):
        heads = blk.attn.num_heads
        hd = c // heads
        table = blk.attn.rel_pos_embed.weight
        bias = torch.empty(heads, ws * ws, ws * ws)
        for qi, (qy, qx) in enumerate(cells):
            for ki, (ky, kx) in enumerate(cells):
                bias[:, qi, ki] = table[:, (qy - ky + ws - 1) * (2 * ws - 1) + (qx - kx + ws - 1)]
        out = torch.empty_like(t)
        for r in range(g // ws):
            for col in range(g // ws):
                tok = t[:, r * ws:(r + 1) * ws, col * ws:(col + 1) * ws].reshape(b, ws * ws, c)
                qkv = blk.attn.qkv(F.layer_norm(tok, (c,), blk.norm1.weight, blk.norm1.bias, 1e-5))
                o = []
                for h in range(heads):
                    q, k, v = (qkv[..., part * c + h * hd: part * c + (h + 1) * hd] for part in range(3))
                    att = (q @ k.transpose(1, 2)) / hd ** 0.5 + bias[h]
                    o.append(att.softmax(-1) @ v)
                y = tok + blk.attn.proj(torch.cat(o, -1))
                y = y + blk.mlp.fc2(F.gelu(blk.mlp.fc1(F.layer_norm(y, (c,), blk.norm2.weight, blk.norm2.bias, 1e-5))))
                out[:, r * ws:(r + 1) * ws, col * ws:(col + 1) * ws] = y.reshape(b, ws, ws, c)
        t = out
        if i == depth - 1:
            t = F.layer_norm(t, (c,), enc.norm.weight, enc.norm.bias, 1e-5)
        if i in cross:
            bn = enc.cross_conv[cross.index(i)]
            m = t.permute(0, 3, 1, 2)
            y = F.gelu(bn.norm1(bn.conv1(m)))
            y = F.gelu(bn.norm2(bn.conv2(y)))
            t = (bn.norm3(bn.conv3(y)) + m).permute(0, 2, 3, 1)
    neck = enc.neck
    return neck.output_conv[0](neck.lateral_conv[0](t.permute(0, 3, 1, 2)))


def _naive_attention(att, q, k, v):
    """Decoder attention head by head (q/k/v projections split into contiguous head slices)."""
    qp, kp, vp = att.q_proj(q), att.k_proj(k), att.v_proj(v)
    hd = qp.shape[-1] // att.num_heads
    o = [((qp[..., h * hd:(h + 1) * hd] @ kp[..., h * hd:(h + 1) * hd].transpose(1, 2)) / hd ** 0.5).softmax(-1)
         @ vp[..., h * hd:(h + 1) * hd] for h in range(att.num_heads)]
    return att.proj(torch.cat(o, -1))


#: other tiny configurations: depth 4/8/12 (multiples of 4), windows of 2x2, 4x4 and 1 window,
#: 1..4 encoder heads, decoder widths 32/48/96 with 1 or 3 heads, other text widths/heads
OTHER_CONFIGS = [
    dict(vit_depth=8, vit_embed_dim=48, vit_num_heads=3, window_size=3, image_embed_dim=96,
         decoder_num_heads=3, text_embed_dim=128, text_num_heads=2, text_depth=2, vocab_size=97,
         sem_embed_dim=40, text_seq_len=9, image_size=192, patch_size=16),
    dict(vit_depth=12, vit_embed_dim=32, vit_num_heads=4, window_size=8, image_embed_dim=32,
         decoder_num_heads=1, text_embed_dim=64, text_num_heads=1, text_depth=1, vocab_size=100,
         sem_embed_dim=16, text_seq_len=8, image_size=128, patch_size=16),
    dict(vit_depth=4, vit_embed_dim=32, vit_num_heads=1, window_size=4, image_embed_dim=48,
         decoder_num_heads=3, text_embed_dim=64, text_num_heads=4, text_depth=2, vocab_size=50,
         sem_embed_dim=24, text_seq_len=6, image_size=128, patch_size=16, decoder_mlp_dim=96),
]


@pytest.mark.parametrize("cfg", OTHER_CONFIGS, ids=["d8-w3-h3-dec96", "d12-w8-h4-dec32", "d4-w4-h1-dec48"])
def test_verify_other_tiny_configs(cfg):
    torch.manual_seed(1)
    model = verify.build_from_config(cfg).eval()
    _randomise(model, 5)
    fx = {"format": "tap_tiny_fixture_v1", "config": dict(cfg, seed=3, num_concepts=7),
          "tokenizer": {"n_words": cfg["vocab_size"], "bos_id": 1, "eos_id": 2},
          "state_dict": model.state_dict()}
    res = verify.run_fixture(fx)  # loads the state_dict strictly; synthetic images and prompts
    grid = cfg["image_size"] // 16
    assert tuple(res["image_embeddings"].shape) == (2, cfg["image_embed_dim"], grid, grid)
    box = res["calls"]["box"]
    assert tuple(box["sem_embeds"].shape) == (6, 4, cfg["sem_embed_dim"])
    assert tuple(box["concept_logits_all_tokens"].shape) == (6, 4, 7)
    assert box["caption_token_ids"].shape[1] == cfg["text_seq_len"] - 1
    assert box["caption_step_logits"].shape[-1] == cfg["vocab_size"]
    # the image encoder against the written-out dataflow (windows, rel-pos bias, bottlenecks, neck)
    with torch.inference_mode():
        want = _naive_encoder(model.image_encoder, res["img_preprocessed"])
    torch.testing.assert_close(res["image_embeddings"], want, atol=2e-5, rtol=1e-4)
    # every decoder attention against a head-by-head version (head split for these widths)
    torch.manual_seed(2)
    for name, att in model.image_decoder.named_modules():
        if isinstance(att, image_decoder.Attention):
            q, k = torch.randn(2, 5, cfg["image_embed_dim"]), torch.randn(2, 7, cfg["image_embed_dim"])
            with torch.inference_mode():
                torch.testing.assert_close(att(q, k, k), _naive_attention(att, q, k, k), atol=1e-5,
                                           rtol=1e-5, msg=name)
    # the multimask rule on these outputs: boxes take 0, point prompts the best of 1..3
    assert box["mask_index"].eq(0).all()
    pt = res["calls"]["point"]
    assert torch.equal(pt["mask_index"], pt["iou_pred"][:, 1:].argmax(1) + 1)


def test_relative_position_index_by_hand():
    idx = relative_position_index(2)
    # tokens (0,0) (0,1) (1,0) (1,1); index = (dy + 1) * 3 + (dx + 1)
    want = torch.tensor([[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])
    assert torch.equal(idx, want)


def test_window_partition_order():
    x = torch.arange(16.0).view(1, 4, 4, 1)
    w = window_partition(x, 2)
    assert w[:, :, 0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    assert torch.equal(window_merge(w, 2, 4, 4), x)


def test_rotary_interleaved_by_hand():
    cos, sin = rotary_tables(3, 4)
    # position 2, pair 0 has frequency 1, pair 1 frequency 10000^-0.5 = 0.01
    assert cos[2].tolist() == pytest.approx([np.cos(2.0), np.cos(0.02)], abs=1e-6)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 4)
    y = apply_rotary_interleaved(x, cos[2:3], sin[2:3]).flatten().tolist()
    c0, s0, c1, s1 = np.cos(2.0), np.sin(2.0), np.cos(0.02), np.sin(0.02)
    assert y == pytest.approx([c0 - 2 * s0, s0 + 2 * c0, 3 * c1 - 4 * s1, 3 * s1 + 4 * c1], abs=1e-6)


def test_kv_cache_matches_teacher_forcing():
    torch.manual_seed(0)
    model = build_tap(encoder_depth=4, encoder_embed_dim=32, encoder_num_heads=2, window_size=4,
                      image_size=128, embed_dim=32, sem_embed_dim=16, text_embed_dim=32,
                      text_num_heads=2, text_depth=2, text_seq_len=10, vocab_size=40).eval()
    dec = model.text_decoder
    sem = torch.randn(3, 1, 32) * 3
    gen = generate_greedy(dec, sem, bos_id=1, eos_id=39, pad_id=39)
    steps = gen.step_logits.shape[1]
    with torch.inference_mode():
        toks = torch.as_tensor(gen.tokens[:, :steps])
        x = torch.cat([dec.encoder(sem), dec.transformer.tok_embeddings(toks)], 1)
        full = dec(x, 0)[:, 1:]
    torch.testing.assert_close(gen.step_logits, full, atol=1e-5, rtol=1e-5)
    assert np.array_equal(full.argmax(-1).numpy(), gen.tokens[:, 1:steps + 1])
