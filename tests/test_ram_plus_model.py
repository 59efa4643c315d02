"""RAM++ model pieces: Swin geometry, a second tiny configuration, conversion and strict loading."""
from __future__ import annotations

import json

import pytest
import torch

from openvocab.checkpoint import CheckpointError, load_strict
from tagging.ram_plus.convert import convert_state_dict
from tagging.ram_plus.model import RAMPlus, build_ram_plus_swin_l, build_ram_plus_tiny
from tagging.recognize_anything.swin import PatchMerging, SwinBlock, relative_position_index, shifted_window_mask


def test_relative_position_index_by_hand():
    # window 2: tokens (0,0),(0,1),(1,0),(1,1); index = (dy+1)*3 + (dx+1), d = token_i - token_j
    want = torch.tensor([[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])
    assert torch.equal(relative_position_index(2), want)


def test_shifted_window_mask_by_hand():
    m = shifted_window_mask(4, 4, 2, 1)  # 4 windows of 2x2
    assert m.shape == (4, 4, 4)
    assert torch.equal(m[0], torch.zeros(4, 4))  # top-left window: one region
    # top-right window: columns 2 and 3 are different regions -> tokens {0,2} and {1,3}
    same = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.bool)
    assert torch.equal(m[1], torch.where(same, 0.0, -100.0))
    # bottom-right window: four regions, every token alone
    assert torch.equal(m[3], torch.where(torch.eye(4, dtype=torch.bool), 0.0, -100.0))


def test_patch_merging_order():
    torch.manual_seed(0)
    pm = PatchMerging(dim=2, resolution=4)
    x = torch.randn(1, 16, 2)
    g = x.view(1, 4, 4, 2)
    cells = [torch.cat([g[0, 2 * i, 2 * j], g[0, 2 * i + 1, 2 * j], g[0, 2 * i, 2 * j + 1],
                        g[0, 2 * i + 1, 2 * j + 1]]) for i in range(2) for j in range(2)]
    want = pm.reduction(pm.norm(torch.stack(cells)[None]))
    assert torch.allclose(pm(x), want, atol=1e-6)


def test_window_clamped_to_small_grid():
    blk = SwinBlock(dim=8, resolution=6, num_heads=2, window=12, shift=6)
    assert (blk.window, blk.shift, blk.attn_mask) == (6, 0, None)
    assert blk.attn.relative_position_bias_table.shape == (11 * 11, 2)
    with pytest.raises(ValueError, match="divisible"):
        SwinBlock(dim=8, resolution=20, num_heads=2, window=6, shift=3)


def _config_b() -> RAMPlus:
    # a configuration unlike fixture A: 3 stages, shifted windows in all of them, window 4, 128 px,
    # 7 tags with 5 descriptions each, 512-wide decoder (wordvec_proj is the identity), 1 layer, 4 heads
    torch.manual_seed(1)
    return RAMPlus(image_size=128, embed_dim=16, depths=(2, 3, 2), num_heads=(2, 2, 4), window_size=4,
                   num_classes=7, descriptions_per_tag=5, decoder_hidden_size=512, decoder_layers=1,
                   decoder_heads=4, decoder_intermediate_size=256).eval()


@pytest.fixture(scope="module")
def model_b() -> RAMPlus:
    return _config_b()


@pytest.fixture(scope="module")
def images_b() -> torch.Tensor:
    return torch.randn(3, 3, 128, 128, generator=torch.Generator().manual_seed(2))


def test_config_b_shapes_and_keys(model_b, images_b):
    sd = model_b.state_dict()
    assert not any(k.startswith("wordvec_proj") for k in sd)
    assert not any(k.endswith(("relative_position_index", "attn_mask")) for k in sd)
    assert sd["label_embed"].shape == (35, 512)
    assert sd["visual_encoder.layers.1.downsample.reduction.weight"].shape == (64, 128)
    assert model_b.visual_encoder.layers[2].blocks[1].attn_mask.shape == (4, 16, 16)
    with torch.no_grad():
        out = model_b(images_b)
    assert out.logits.shape == (3, 7)
    assert out.image_embeds.shape == (3, 1 + 8 * 8, 512)
    # token 0 is the mean of the final (normed) tokens, before the projection
    with torch.no_grad():
        tokens = model_b.visual_encoder(images_b)
    assert torch.allclose(tokens[:, 0], tokens[:, 1:].mean(1), atol=1e-6)


def test_config_b_batched_equals_single(model_b, images_b):
    with torch.no_grad():
        batched = model_b(images_b).logits
        single = torch.cat([model_b(images_b[i:i + 1]).logits for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)


def test_reweight_matches_official_loop(model_b, images_b):
    with torch.no_grad():
        emb = model_b.encode_image(images_b)
        got = model_b.reweight(emb, model_b.label_embed, 5)
        cls = emb[:, 0] / emb[:, 0].norm(dim=-1, keepdim=True)
        w = (model_b.reweight_scale.exp() * cls @ model_b.label_embed.t()).view(3, -1, 5).softmax(dim=2)
        want = torch.stack([(w[i].unsqueeze(-1) * model_b.label_embed.view(-1, 5, 512)).sum(1) for i in range(3)])
    assert torch.allclose(got, want, atol=1e-6)


def test_tags_are_independent(model_b, images_b):
    # no self-attention between tags: a subset of the description rows gives the same logits
    with torch.no_grad():
        emb = model_b.encode_image(images_b)
        full = model_b.tag_logits(emb)
        rows = torch.cat([model_b.label_embed[2 * 5:3 * 5], model_b.label_embed[5 * 5:6 * 5]])
        sub = model_b.tag_logits(emb, rows, 5)
    assert torch.allclose(sub, full[:, [2, 5]], atol=1e-5)
    with pytest.raises(ValueError):
        model_b.tag_logits(emb, rows, 4)  # 10 rows are not K * 4


def test_bf16_autocast(model_b, images_b):
    with torch.no_grad():
        ref = model_b(images_b).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model_b(images_b).logits
    assert low.dtype == torch.bfloat16
    assert torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() < 0.25 * ref.abs().max() + 0.05


def test_bad_inputs_raise_value_error(model_b):
    with pytest.raises(ValueError, match="128"):
        model_b(torch.zeros(1, 3, 96, 96))
    with pytest.raises(ValueError, match="equal length"):
        build_ram_plus_tiny(depths=(1, 1), num_heads=(1, 2, 4))
    with pytest.raises(ValueError, match="divisible"):
        build_ram_plus_tiny(image_size=96, window_size=7)  # 24-token grid, 7-token windows


def test_convert_official_layout_round_trip(model_b, images_b):
    official = {}
    for k, v in model_b.state_dict().items():
        official[k.replace("tagging_head", "vision_multi")] = v.clone()
    for name, buf in model_b.named_buffers():  # the buffers the official file carries
        official[name] = buf.clone()
    official["vision_multi.embeddings.word_embeddings.weight"] = torch.zeros(4, 512)
    official["vision_multi.encoder.layer.0.attention.self.query.weight"] = torch.zeros(512, 512)
    sd = convert_state_dict({"model": official})
    assert not any("vision_multi" in k or k.endswith("attn_mask") or ".attention." in k for k in sd)
    fresh = _config_b()
    torch.manual_seed(123)
    fresh.label_embed.data.normal_()
    load_strict(fresh, sd)
    with torch.no_grad():
        assert torch.equal(fresh(images_b).logits, model_b(images_b).logits)


def test_wrong_checkpoint_one_error_naming_keys(model_b):
    tiny = build_ram_plus_tiny(num_classes=7)
    with pytest.raises(CheckpointError) as err:
        load_strict(tiny, convert_state_dict(model_b.state_dict()))
    msg = str(err.value)
    assert "34 missing keys" in msg and "unexpected keys" in msg
    assert "tagging_head.encoder.layer.1.crossattention.output.LayerNorm.bias" in msg  # B has 1 layer
    assert "shape mismatches" in msg and "checkpoint (512,) vs model (64,)" in msg


def test_swin_l_layout_matches_official_keys(parity_dir):
    ref = json.loads((parity_dir / "ram_plus" / "ram_plus_swin_large_keys.json").read_text())
    official = convert_state_dict({e["key"]: torch.empty(e["shape"], device="meta") for e in ref["keys"]})
    with torch.device("meta"):
        model = build_ram_plus_swin_l()
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert mine == {k: tuple(v.shape) for k, v in official.items()}
    assert sum(v.numel() for v in model.parameters()) == ref["num_parameters"]
    # the dropped buffers are rebuilt with the official shapes
    buffers = dict(model.named_buffers())
    for e in ref["keys"]:
        if e["key"].endswith(("relative_position_index", "attn_mask")):
            assert tuple(buffers[e["key"]].shape) == tuple(e["shape"]), e["key"]
