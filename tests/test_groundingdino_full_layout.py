"""Full-size builds: SwinT-OGC has exactly the official checkpoint's keys, shapes, dtypes and ties (after
conversion); SwinB-cogcoor has the Swin-B layout."""
from __future__ import annotations

import json

import pytest
import torch

from grounding.groundingdino.convert import convert_state_dict
from grounding.groundingdino.model import build_gdino_swinb_cogcoor, build_gdino_swint_ogc

_POOLER = ("bert.pooler.dense.weight", "bert.pooler.dense.bias")  # in the file, unused by the model


@pytest.fixture(scope="module")
def ref(parity_dir):
    r = json.loads((parity_dir / "grounding_dino" / "gdino_swint_ogc_state_dict_keys.json").read_text())
    assert len(r["keys"]) == r["n_keys"] == 938
    return {e["key"]: e for e in r["keys"]}, r["n_unique_parameters"]


@pytest.fixture(scope="module")
def swint():
    with torch.device("meta"):
        return build_gdino_swint_ogc()


def _as_ours(key: str) -> str:
    return convert_state_dict({"model": {key: torch.empty(0)}}).popitem()[0]


def test_swint_ogc_keys_shapes_dtypes(ref, swint):
    keys, _ = ref
    ours = swint.state_dict()
    # as released: 'module.' prefix, plus the keys users see as unexpected with strict=False
    released = {"module." + k: torch.empty(e["shape"], dtype=getattr(torch, e["dtype"]), device="meta")
                for k, e in keys.items()}
    released["module.bert.embeddings.position_ids"] = torch.empty(1, 512, dtype=torch.long, device="meta")
    released["module.label_enc.weight"] = torch.empty(2001, 256, device="meta")
    conv = convert_state_dict({"model": released})
    assert set(conv) == set(ours)
    assert [k for k in conv if tuple(conv[k].shape) != tuple(ours[k].shape)] == []
    assert [k for k in conv if conv[k].dtype != ours[k].dtype] == []
    assert ours["backbone.layers.0.blocks.0.attn.relative_position_index"].dtype == torch.int64
    # key order follows the official registration order (transformer, bert, feat_map, input_proj, backbone, heads)
    order = [_as_ours(k) for k in keys if k not in _POOLER]
    assert list(ours) == order


def test_swint_ogc_ties_and_parameter_count(ref, swint):
    keys, n_unique = ref
    ours = swint.state_dict(keep_vars=True)
    for k, e in keys.items():
        if k in _POOLER:
            continue
        if e["tied_to"]:
            assert ours[_as_ours(k)] is ours[_as_ours(e["tied_to"])], k
    n_tied = sum(1 for e in keys.values() if e["tied_to"])
    assert len({id(v) for v in ours.values()}) == len(ours) - n_tied  # nothing else is shared
    pooler = sum(torch.Size(keys[k]["shape"]).numel() for k in _POOLER)
    assert sum(p.numel() for p in swint.parameters()) + pooler == n_unique


def test_swinb_cogcoor_layout(swint):
    with torch.device("meta"):
        swinb = build_gdino_swinb_cogcoor()
    t, b = swint.state_dict(), swinb.state_dict()
    extra = {k for k in b if k.startswith("backbone.layers.2.blocks.") and int(k.split(".")[4]) >= 6}
    assert set(b) - extra == set(t) and len(extra) == 12 * 14  # depths 2-2-18-2 vs 2-2-6-2
    assert len(b) + len(_POOLER) + 2 == 1108  # the released file's key count (+ label_enc, position_ids)
    assert b["backbone.patch_embed.proj.weight"].shape == (128, 3, 4, 4)
    assert b["backbone.layers.3.blocks.1.attn.relative_position_bias_table"].shape == (23 * 23, 32)  # window 12
    assert b["backbone.layers.0.blocks.0.attn.relative_position_index"].shape == (144, 144)
    assert [b[f"input_proj.{i}.0.weight"].shape[1] for i in range(4)] == [256, 512, 1024, 1024]
