"""Other tiny configurations (Swin sizes/window, heads, layer counts, query counts, BERT sizes): official-layout
state dicts convert and load strictly, the HF converter round-trips, and transformers' independent
``GroundingDinoForObjectDetection`` loads our HF-layout weights strictly and computes the same outputs."""
from __future__ import annotations

import json
import re

import pytest
import torch

from grounding.groundingdino.convert import convert_hf_state_dict, convert_state_dict, to_hf_state_dict
from grounding.groundingdino.model import build_from_official_config
from grounding.groundingdino.preprocess import preprocess_images
from grounding.groundingdino.tokenize import load_tokenizer, tokenize
from openvocab.checkpoint import load_strict

CONFIGS = {
    "B": dict(config=dict(swin_embed_dim=32, swin_depths=[2, 2, 2, 2], swin_num_heads=[2, 4, 4, 8], swin_window_size=12,
                          nheads=8, enc_layers=2, dec_layers=3, dim_feedforward=256, num_queries=50),
              bert=dict(hidden_size=96, num_hidden_layers=3, num_attention_heads=3, intermediate_size=192,
                        max_position_embeddings=512),
              captions=["a man riding a bicycle . traffic light . cup .", "zebra crossing . white bird ."]),
    "C": dict(config=dict(swin_embed_dim=24, swin_depths=[1, 2, 3, 1], swin_num_heads=[3, 3, 6, 12], swin_window_size=7,
                          nheads=2, enc_layers=3, dec_layers=1, dim_feedforward=64, num_queries=17),
              bert=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=256),
              captions=["green umbrella . small dog .", "the woman with a blue cup . sky . red car ."]),
}


@pytest.fixture(scope="module")
def vocab_file(parity_dir, tmp_path_factory):
    p = tmp_path_factory.mktemp("gdino_cfg") / "vocab.txt"
    p.write_text(torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A.pt", weights_only=True)["vocab_txt"])
    return p


def _bert_config(name, vocab_file):
    n = len(vocab_file.read_text().rstrip("\n").split("\n"))
    return dict(vocab_size=n, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0,
                **CONFIGS[name]["bert"])


def _random_model(name, vocab_file, seed=0):
    """Our model for the config, with the official inits' constants replaced by random values (as the
    official fixtures do) so that no code path is hidden by zeros or ones."""
    torch.manual_seed(seed)
    model = build_from_official_config(CONFIGS[name]["config"], _bert_config(name, vocab_file)).eval()
    g = torch.Generator().manual_seed(seed + 1)
    n = lambda t, s: torch.randn(t.shape, generator=g) * s  # noqa: E731
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
                mod.weight.copy_(1 + n(mod.weight, 0.1))
                mod.bias.copy_(n(mod.bias, 0.05))
        for key, p in model.named_parameters():
            if key.endswith(("sampling_offsets.weight", "attention_weights.weight")):
                p.copy_(n(p, 0.03))
            elif key.endswith("attention_weights.bias"):
                p.copy_(n(p, 0.3))
            elif key.endswith(("gamma_v", "gamma_l")):
                p.copy_(torch.rand(p.shape, generator=g) * 0.8 + 0.2)
            elif key.endswith("relative_position_bias_table"):
                p.copy_(n(p, 0.2))
            elif "bbox_embed" in key and ".layers.2." in key:
                p.copy_(n(p, 0.01) if key.endswith("weight") else n(p, 0.1))
            elif key in ("transformer.decoder.norm.weight", "transformer.enc_output_norm.weight"):
                p.copy_(0.12 + n(p, 0.02))
            elif p.ndim == 1 and bool((p == 0).all()):
                p.copy_(n(p, 0.02))
    return model


def _official_layout(sd: dict) -> dict:
    """Our keys -> the released file's layout: {'model': {'module.' + official key}} with the extras it holds."""
    off = {("backbone.0." + k[len("backbone."):] if k.startswith("backbone.") else k): v for k, v in sd.items()}
    hidden = sd["bert.embeddings.word_embeddings.weight"].shape[1]
    off["bert.pooler.dense.weight"], off["bert.pooler.dense.bias"] = torch.zeros(hidden, hidden), torch.zeros(hidden)
    off["bert.embeddings.position_ids"] = torch.arange(512)[None]
    off["label_enc.weight"] = torch.zeros(2001, 256)
    return {"model": {"module." + k: v for k, v in off.items()}}


def _pattern(key: str) -> str:
    return re.sub(r"\.\d+\.", ".N.", re.sub(r"\.\d+\.", ".N.", key))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_official_layout_converts_and_loads_strict(name, vocab_file, parity_dir):
    model = _random_model(name, vocab_file)
    sd = model.state_dict()
    released = _official_layout(sd)
    # the official key layout of this config follows exactly the full-size SwinT-OGC file's key patterns
    ref = json.loads((parity_dir / "grounding_dino" / "gdino_swint_ogc_state_dict_keys.json").read_text())
    want = {_pattern(e["key"]) for e in ref["keys"]}
    got = {_pattern(k[len("module."):]) for k in released["model"]} - {"label_enc.weight",
                                                                        "bert.embeddings.position_ids"}
    assert got == want
    fresh = build_from_official_config(CONFIGS[name]["config"], _bert_config(name, vocab_file))
    load_strict(fresh, convert_state_dict(released), source=f"config {name}")
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, sd[k]), k
    # shared box heads stay tied after loading (one module, as in the official model)
    assert fresh.bbox_embed[0] is fresh.transformer.decoder.bbox_embed[-1]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_hf_converter_round_trip(name, vocab_file):
    sd = _random_model(name, vocab_file).state_dict()
    hf = to_hf_state_dict(sd)
    assert all(k.startswith(("model.", "bbox_embed.")) for k in hf)
    back = convert_hf_state_dict(hf)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def _hf_model(name, vocab_file, hf_state_dict, folder):
    """transformers' own model for the config, loaded the way transformers loads a Hub checkpoint: our HF-layout
    weights written as ``model.safetensors`` + ``config.json`` and read by ``from_pretrained`` (which maps the
    Hub layout onto its current module names)."""
    import transformers as hf
    from safetensors.torch import save_file

    c = CONFIGS[name]["config"]
    swin = hf.SwinConfig(embed_dim=c["swin_embed_dim"], depths=c["swin_depths"], num_heads=c["swin_num_heads"],
                         window_size=c["swin_window_size"], out_features=["stage2", "stage3", "stage4"])
    text = hf.BertConfig(**_bert_config(name, vocab_file))
    # transformers 5 cannot tie the shared box head across decoder layers when there is only one layer (it
    # raises); with one layer nothing is shared, and every copy of the head is in the file
    extra = {"tie_word_embeddings": False} if c["dec_layers"] == 1 else {}
    cfg = hf.GroundingDinoConfig(backbone_config=swin.to_dict(), text_config=text.to_dict(),
                                 num_queries=c["num_queries"], encoder_layers=c["enc_layers"],
                                 decoder_layers=c["dec_layers"], encoder_ffn_dim=c["dim_feedforward"],
                                 decoder_ffn_dim=c["dim_feedforward"], encoder_attention_heads=c["nheads"],
                                 decoder_attention_heads=c["nheads"], disable_custom_kernels=True, **extra)
    cfg.save_pretrained(folder)
    save_file({k: v.detach().clone().contiguous() for k, v in hf_state_dict.items()},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    model, info = hf.GroundingDinoForObjectDetection.from_pretrained(folder, output_loading_info=True)
    return model.eval(), info


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_matches_transformers_grounding_dino(name, vocab_file, tmp_path):
    """transformers' GroundingDino matches the official code at B=1 and in batches (NOTES.md section 6), so
    it is an independent reference for configurations the stored fixture does not cover."""
    torch.set_num_threads(2)
    ours = _random_model(name, vocab_file, seed=3)
    theirs, info = _hf_model(name, vocab_file, to_hf_state_dict(ours.state_dict()), tmp_path)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    rs = torch.Generator().manual_seed(5)
    images = [torch.randint(0, 255, (90, 130, 3), generator=rs, dtype=torch.uint8).numpy(),
              torch.randint(0, 255, (140, 100, 3), generator=rs, dtype=torch.uint8).numpy()]
    batch = preprocess_images(images, 96, 176)  # different sizes: zero padding + masks
    tb = tokenize(load_tokenizer(str(vocab_file)), CONFIGS[name]["captions"])  # different captions: text padding
    with torch.no_grad():
        o = ours(batch.pixel_values, batch.pixel_mask, tb.input_ids, tb.attention_mask,
                 tb.text_self_attention_masks, tb.position_ids)
        h = theirs(pixel_values=batch.pixel_values, pixel_mask=(~batch.pixel_mask).long(), input_ids=tb.input_ids,
                   attention_mask=tb.attention_mask.long(), token_type_ids=tb.token_type_ids)
        singles = [ours(batch.pixel_values[i:i + 1], batch.pixel_mask[i:i + 1], tb.input_ids[i:i + 1],
                        tb.attention_mask[i:i + 1], tb.text_self_attention_masks[i:i + 1], tb.position_ids[i:i + 1])
                   for i in range(2)]
    t = tb.input_ids.shape[1]
    fin = torch.isfinite(o.pred_logits)
    assert torch.equal(fin[..., :t], torch.isfinite(h.logits[..., :t])) and not fin[..., t:].any()
    assert float(o.pred_logits[..., :t][fin[..., :t]].std()) > 0.1  # not a degenerate comparison
    torch.testing.assert_close(o.pred_logits[..., :t][fin[..., :t]], h.logits[..., :t][fin[..., :t]],
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(o.pred_boxes, h.pred_boxes, atol=1e-4, rtol=0)
    for i, s in enumerate(singles):  # our batched rows equal each sample run alone (no text-mask mix-up)
        f = torch.isfinite(s.pred_logits)
        torch.testing.assert_close(o.pred_logits[i:i + 1][f], s.pred_logits[f], atol=1e-4, rtol=0)
        torch.testing.assert_close(o.pred_boxes[i:i + 1], s.pred_boxes, atol=1e-4, rtol=0)
