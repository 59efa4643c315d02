"""RAM++ parity on tiny configurations other than fixture A, against the official code's numbers.

Fixture A pins one configuration. These three differ from it and from each other: 224 px input
with window 7 (stage-4 window clamped to the grid), 224 px with window 14 (windows clamped in two
stages), 384 px with window 6 and only 3 Swin stages; Swin depths with 1 and 3 blocks; a
512-wide decoder (``wordvec_proj`` is the identity, no keys), 1 to 3 decoder layers, 1 to 8
heads, ``layer_norm_eps`` 1e-6, a ReLU ``hidden_act``; 5 to 11 tags, ``delete_tag_index``.

How the reference numbers were made: the unmodified official recognize-anything code (commit
7cb804a, ``ram_plus(vit='swin_b', image_size=S, tag_list=..., delete_tag_index=...)`` with the
sizes written into its swin/q2l JSON configs) was run once, outside this repository, on the
weights :func:`official_weights` draws (official key names, seeded), on the raw images
:func:`raw_images` draws, through the official ``get_transform``. Its ``fc`` outputs (logits),
``generate_tag`` strings, ``generate_tag_openset`` strings and state_dict buffer names/shapes are
stored below. The weights and images are redrawn here from the same seeds (``torch.Generator``),
so the test needs nothing but this file.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from tagging import verify
from tagging.ram_plus.convert import convert_state_dict
from tagging.ram_plus.model import RAMPlus, model_kwargs_from_official
from tagging.recognize_anything.preprocess import preprocess

_BUFFERS = ("relative_position_index", "attn_mask")

CONFIGS = {
    "B_224_w7_identity_proj": dict(
        swin=dict(image_res=224, window_size=7, embed_dim=24, depths=[2, 1, 3, 2], num_heads=[2, 3, 4, 8],
                  vision_width=192),
        q2l=dict(hidden_size=512, num_hidden_layers=1, num_attention_heads=8, intermediate_size=96,
                 layer_norm_eps=1e-12, hidden_act="gelu"),
        thresholds=[0.5, 0.75, 0.45, 0.6, 0.7, 0.35, 0.3], delete=[2, 5], seed=11,
        raw_sizes=[(300, 200), (150, 260)], openset_k=3, label_scale=20.0, fc_bias=-2.0,
        logits=[[-0.4159081, 1.412932, -0.1810094, 0.2937512, 0.9213302, -0.4772307, -0.9205015],
                [-0.428165, 1.511634, 0.10395, 0.602289, 1.179867, -0.151829, -0.6700201]],
        openset_logits=[[0.3262882, 0.3317854, 0.3410325], [0.6033537, 0.6082733, 0.6169538]],
        tags=["tag1 | tag4", "tag1 | tag3 | tag4 | tag6"],
        openset_tags=["open0 | open1 | open2", "open0 | open1 | open2"],
        buffers={"layers.0.blocks.0.attn.relative_position_index": [49, 49],
                 "layers.0.blocks.1.attn_mask": [64, 49, 49],
                 "layers.0.blocks.1.attn.relative_position_index": [49, 49],
                 "layers.1.blocks.0.attn.relative_position_index": [49, 49],
                 "layers.2.blocks.0.attn.relative_position_index": [49, 49],
                 "layers.2.blocks.1.attn_mask": [4, 49, 49],
                 "layers.2.blocks.1.attn.relative_position_index": [49, 49],
                 "layers.2.blocks.2.attn.relative_position_index": [49, 49],
                 "layers.3.blocks.0.attn.relative_position_index": [49, 49],
                 "layers.3.blocks.1.attn.relative_position_index": [49, 49]}),
    "C_384_w6_3stages_relu": dict(
        swin=dict(image_res=384, window_size=6, embed_dim=16, depths=[1, 2, 1], num_heads=[1, 2, 4],
                  vision_width=64),
        q2l=dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=3, intermediate_size=64,
                 layer_norm_eps=1e-6, hidden_act="relu"),
        thresholds=[0.5, 0.55, 0.6, 0.45, 0.5, 0.65, 0.5, 0.4, 0.5, 0.7, 0.5], delete=[0, 7], seed=23,
        raw_sizes=[(97, 130), (400, 380)], openset_k=4, label_scale=10.0, fc_bias=2.8,
        logits=[[-0.3490746, 0.4692531, -0.3029046, -1.817633, 0.7962337, 0.2647376, -0.07790017, 0.382344,
                 0.7247925, 0.5538514, -0.9209833],
                [-0.1477821, -0.3273091, 0.1363423, -1.625087, -0.3428516, 0.1917493, -0.538892, -0.5790417,
                 0.6297257, 1.134782, -1.130841]],
        openset_logits=[[0.8492041, 0.5914752, 0.589237, 0.6967726], [0.7921548, 0.5103981, 0.5931575, 0.6155114]],
        tags=["tag1 | tag4 | tag8", "tag8 | tag9"],
        openset_tags=["open0 | open1 | open2 | open3", "open0 | open1 | open2 | open3"],
        buffers={"layers.0.blocks.0.attn.relative_position_index": [36, 36],
                 "layers.1.blocks.0.attn.relative_position_index": [36, 36],
                 "layers.1.blocks.1.attn_mask": [64, 36, 36],
                 "layers.1.blocks.1.attn.relative_position_index": [36, 36],
                 "layers.2.blocks.0.attn.relative_position_index": [36, 36]}),
    "D_224_w14_clamped": dict(
        swin=dict(image_res=224, window_size=14, embed_dim=8, depths=[2, 2, 2, 2], num_heads=[1, 1, 2, 2],
                  vision_width=64),
        q2l=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=1, intermediate_size=32,
                 layer_norm_eps=1e-12, hidden_act="gelu"),
        thresholds=[0.5, 0.6, 0.55, 0.5, 0.45], delete=[], seed=37,
        raw_sizes=[(224, 224), (50, 300)], openset_k=2, label_scale=10.0, fc_bias=-2.5,
        logits=[[-1.115671, 0.9084864, 0.2747447, -0.09051704, -1.29072],
                [-1.045226, 1.070731, 0.290988, 0.7812858, 0.3831275]],
        openset_logits=[[-0.3250344, -0.06450415], [-0.09082317, 0.1805623]],
        tags=["tag1 | tag2", "tag1 | tag2 | tag3 | tag4"],
        openset_tags=["", "open1"],
        buffers={"layers.0.blocks.0.attn.relative_position_index": [196, 196],
                 "layers.0.blocks.1.attn_mask": [16, 196, 196],
                 "layers.0.blocks.1.attn.relative_position_index": [196, 196],
                 "layers.1.blocks.0.attn.relative_position_index": [196, 196],
                 "layers.1.blocks.1.attn_mask": [4, 196, 196],
                 "layers.1.blocks.1.attn.relative_position_index": [196, 196],
                 "layers.2.blocks.0.attn.relative_position_index": [196, 196],
                 "layers.2.blocks.1.attn.relative_position_index": [196, 196],
                 "layers.3.blocks.0.attn.relative_position_index": [49, 49],
                 "layers.3.blocks.1.attn.relative_position_index": [49, 49]}),
}


def official_meta(cfg: dict) -> dict:
    """The fixture-style meta (official swin/q2l configs) of one configuration."""
    n = len(cfg["thresholds"])
    return {"swin_config": cfg["swin"], "q2l_config": cfg["q2l"], "num_class": n, "des_per_class": 51,
            "class_threshold": cfg["thresholds"], "delete_tag_index": cfg["delete"],
            "tags_en": [f"tag{i}" for i in range(n)],
            "openset": {"categories": [f"open{i}" for i in range(cfg["openset_k"])], "class_threshold": 0.5}}


def official_weights(shapes: dict[str, tuple], cfg: dict) -> dict[str, torch.Tensor]:
    """Seeded random weights for the official parameter names (sorted order, one generator)."""
    g = torch.Generator().manual_seed(cfg["seed"])
    out = {}
    for k in sorted(shapes):
        shape = tuple(shapes[k])
        x = torch.randn(shape, generator=g)
        if k == "label_embed":
            x = torch.nn.functional.normalize(x, dim=-1) * cfg["label_scale"]
        elif k == "reweight_scale":
            x = torch.tensor(3.0)
        elif k.endswith("relative_position_bias_table"):
            x = 0.5 * x
        elif len(shape) == 1:
            x = 1 + 0.1 * x if k.endswith("weight") else 0.1 * x
        elif k != "wordvec_proj.weight":
            x = x / math.sqrt(math.prod(shape[1:])) * (2.0 if k == "fc.weight" else 1.0)
        if k == "fc.bias":
            x = torch.full(shape, float(cfg["fc_bias"]))
        out[k] = x
    return out


def raw_images(cfg: dict) -> tuple[list, torch.Generator]:
    g = torch.Generator().manual_seed(cfg["seed"] + 1)
    return [torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8) for h, w in cfg["raw_sizes"]], g


def official_fixture(name: str) -> dict:
    """A fixture-like dict (as ``../shared/parity/ram_plus``) for one configuration: the official
    state_dict layout with its deterministic buffers, the raw images, no preprocessed input."""
    cfg = CONFIGS[name]
    meta = official_meta(cfg)
    model = RAMPlus(**model_kwargs_from_official(meta))
    params = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    sd = official_weights(params, cfg)
    for key, shape in cfg["buffers"].items():  # the official file carries these buffers
        sd["visual_encoder." + key] = torch.zeros(shape, dtype=torch.int64 if key.endswith("index") else torch.float32)
    raw, g = raw_images(cfg)
    openset_embed = torch.nn.functional.normalize(torch.randn(cfg["openset_k"] * 51, 512, generator=g), dim=-1)
    return {"meta_json": json.dumps(meta), "state_dict": sd, "inputs": {"raw_uint8": raw},
            "openset": {"label_embed": openset_embed}}


def _tags(targets: torch.Tensor, prefix: str) -> list[str]:
    return [" | ".join(f"{prefix}{i}" for i in torch.nonzero(row).flatten().tolist()) for row in targets]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_other_config_matches_official(name):
    cfg = CONFIGS[name]
    fixture = official_fixture(name)
    # the official layout converts and loads strict=True; the rebuilt buffers have the official shapes
    model = RAMPlus(**model_kwargs_from_official(json.loads(fixture["meta_json"])))
    model.load_state_dict(convert_state_dict(fixture["state_dict"]), strict=True)
    rebuilt = {k: list(v.shape) for k, v in model.visual_encoder.named_buffers()}
    assert rebuilt == cfg["buffers"]
    # raw images -> our preprocessing -> model: the official logits, tags and open-set tags
    fixture["inputs"]["image"] = preprocess([t.numpy() for t in fixture["inputs"]["raw_uint8"]],
                                            image_size=cfg["swin"]["image_res"])
    res, _ = verify.run(fixture)
    want = torch.tensor(cfg["logits"])
    assert (res["raw_logits"] - want).abs().max() < 1e-4
    assert (res["logits"] - want).abs().max() < 1e-4
    assert _tags(res["targets"], "tag") == cfg["tags"]  # after delete_tag_index, list order
    assert (res["openset_logits"] - torch.tensor(cfg["openset_logits"])).abs().max() < 1e-4
    assert _tags(res["openset_targets"], "open") == cfg["openset_tags"]


def test_verify_cli_on_another_config(tmp_path):
    name = "D_224_w14_clamped"
    fixture = official_fixture(name)
    fixture["outputs"] = {"logits": torch.tensor(CONFIGS[name]["logits"])}
    path = tmp_path / "d.pt"
    torch.save(fixture, path)
    assert verify.main([str(path), "--save", str(tmp_path / "out.pt")]) == 0
    fixture["outputs"]["logits"] = fixture["outputs"]["logits"] + torch.tensor([0.0, 0.0, 0.0, 0.0, 2e-4])
    torch.save(fixture, path)
    assert verify.main([str(path)]) == 1  # one logit 2e-4 off fails the 1e-4 tolerance


def test_official_config_errors():
    meta = official_meta(CONFIGS["B_224_w7_identity_proj"])
    meta["swin_config"] = dict(meta["swin_config"], vision_width=256)  # the official model cannot run it
    with pytest.raises(ValueError, match="vision_width 256"):
        model_kwargs_from_official(meta)
    meta = official_meta(CONFIGS["B_224_w7_identity_proj"])
    meta["q2l_config"] = dict(meta["q2l_config"], hidden_act="mish")
    with pytest.raises(ValueError, match="hidden_act 'mish'"):
        RAMPlus(**model_kwargs_from_official(meta))
    with pytest.raises(ValueError, match="lacks"):
        model_kwargs_from_official({"swin_config": {}, "q2l_config": {}})
