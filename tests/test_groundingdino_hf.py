"""Hugging Face (transformers) layout converters, both ways, and outputs through the HF weights."""
from __future__ import annotations

import pytest
import torch

from grounding.groundingdino import verify
from grounding.groundingdino.convert import (convert_hf_state_dict, convert_state_dict, is_hf_state_dict,
                                             to_hf_state_dict)


@pytest.fixture(scope="module")
def sds(parity_dir):
    a = torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A.pt", weights_only=True)["state_dict"]
    h = torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A_hf.pt", weights_only=True)["state_dict"]
    return a, h


def test_hf_to_ours_and_back(sds):
    a, h = sds
    assert is_hf_state_dict(h) and not is_hf_state_dict(a)
    ours = convert_state_dict({"model": a})
    conv = convert_hf_state_dict(h)
    assert set(conv) == set(ours)
    for k in ours:
        assert torch.equal(conv[k], ours[k]), k
    back = to_hf_state_dict(ours)
    assert set(back) == set(h)
    for k in h:
        assert torch.equal(back[k], h[k]), k


def test_hf_unknown_key_raises_and_old_buffers_are_dropped(sds):
    _, h = sds
    with pytest.raises(ValueError, match="model.something_new.weight"):
        convert_hf_state_dict({**h, "model.something_new.weight": torch.zeros(1)})
    old = {**h, "model.text_backbone.embeddings.position_ids": torch.arange(512)[None]}  # older transformers
    assert set(convert_hf_state_dict(old)) == set(convert_hf_state_dict(h))


def test_verify_with_hf_weights(parity_dir, capsys):
    d = parity_dir / "grounding_dino"
    assert verify.main([str(d / "gdino_tiny_A.pt"), "--weights", str(d / "gdino_tiny_A_hf.pt")]) == 0
    assert "OK" in capsys.readouterr().out
