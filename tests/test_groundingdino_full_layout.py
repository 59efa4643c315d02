"""The full-size SwinT-OGC build has exactly the official checkpoint's keys and shapes (after conversion)."""
from __future__ import annotations

import json

import torch

from grounding.groundingdino.convert import convert_state_dict
from grounding.groundingdino.model import build_gdino_swint_ogc


def test_swint_ogc_keys_and_shapes(parity_dir):
    ref = json.loads((parity_dir / "grounding_dino" / "gdino_swint_ogc_state_dict_keys.json").read_text())
    assert len(ref["keys"]) == ref["n_keys"] == 938
    with torch.device("meta"):
        model = build_gdino_swint_ogc()
    ours = model.state_dict()
    # as released: 'module.' prefix, plus the keys users see as unexpected with strict=False
    released = {"module." + e["key"]: torch.empty(e["shape"], device="meta") for e in ref["keys"]}
    released["module.bert.embeddings.position_ids"] = torch.empty(1, 512, device="meta")
    released["module.label_enc.weight"] = torch.empty(2001, 256, device="meta")
    conv = convert_state_dict({"model": released})
    pooler = {k for k in conv if k.startswith("bert.pooler.")}
    assert not pooler
    assert set(conv) == set(ours)
    bad = [k for k in conv if tuple(conv[k].shape) != tuple(ours[k].shape)]
    assert bad == []
