"""BERT text encoder (sub-sentence mask, position ids) against the official fixture's outputs."""
from __future__ import annotations

import json

import pytest
import torch

from grounding.groundingdino.bert import TextEncoder


@pytest.fixture(scope="module")
def fix_a(parity_dir):
    return torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A.pt", weights_only=True)


def test_bert_matches_official(fix_a):
    cfg = json.loads(fix_a["meta_json"])["bert_config"]
    te = TextEncoder(config=cfg).eval()
    sd = {k[len("bert."):]: v for k, v in fix_a["state_dict"].items() if k.startswith("bert.") and not k.startswith("bert.pooler.")}
    te.load_state_dict(sd, strict=True)
    b = fix_a["batch"]
    with torch.no_grad():
        h = te(b["input_ids"], b["text_self_attention_masks"], b["position_ids"])
        torch.testing.assert_close(h, b["bert_last_hidden_state"], atol=1e-5, rtol=0)
        for p in fix_a["predict"]:
            ids = p["input_ids"].view(1, -1)
            t = ids.shape[1]
            hp = te(ids, p["text_self_attention_masks"].view(1, t, t), p["position_ids"].view(1, -1))
            torch.testing.assert_close(hp, p["bert_last_hidden_state"].view(hp.shape), atol=1e-5, rtol=0)


def test_bert_rejects_2d_mask(fix_a):
    cfg = json.loads(fix_a["meta_json"])["bert_config"]
    te = TextEncoder(config=cfg)
    with pytest.raises(ValueError):
        te(torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 3, dtype=torch.long))
