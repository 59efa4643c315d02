"""Official RAM and Tag2Text checkpoints: the full-size key lists load strictly (meta device) through the
converters and the official relative-position-table resizing; the converters and the resizing themselves."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from openvocab.checkpoint import CheckpointError
from tagging.ram import build_ram_swin_l
from tagging.ram.convert import convert_state_dict as convert_ram
from tagging.recognize_anything.loading import load_official, resize_relative_position_table
from tagging.tag2text import build_tag2text_swin_b
from tagging.tag2text.convert import convert_state_dict as convert_t2t


def _official(parity_dir, path) -> tuple[dict, dict]:
    ref = json.loads((parity_dir / path).read_text())
    return ref, {e["key"]: torch.empty(e["shape"], dtype=getattr(torch, e["dtype"]), device="meta")
                 for e in ref["keys"]}


@pytest.mark.parametrize("image_size", [384, 224])
def test_ram_swin_l_loads_the_official_layout(parity_dir, image_size):
    ref, sd = _official(parity_dir, "ram/ram_swin_large_keys.json")
    assert len(sd) == 1042
    with torch.device("meta"):
        model = build_ram_swin_l(image_size=image_size)
    converted = convert_ram({"model": sd})
    assert not any(k.startswith(("tag_encoder.", "text_decoder.")) for k in converted)
    load_official(model, converted, source="ram_swin_large_14m.pth")  # strict; 224: tables 23² -> 13² rows
    tables = [m.relative_position_bias_table for m in model.modules() if hasattr(m, "relative_position_bias_table")]
    assert {t.shape[0] for t in tables} == {(2 * (12 if image_size == 384 else 7) - 1) ** 2}
    # the tagging parameters: every official parameter but the unused captioning branch (tied ones once)
    tagging = sum(torch.Size(e["shape"]).numel() for e in ref["keys"] if e["kind"] == "param"
                  and not e["key"].startswith(("tag_encoder.", "text_decoder.")))
    if image_size == 384:
        assert sum(p.numel() for p in model.parameters()) == tagging
    with pytest.raises(CheckpointError, match="1 missing keys: fc.bias"):
        load_official(model, {k: v for k, v in converted.items() if k != "fc.bias"})


@pytest.mark.parametrize("image_size", [384, 224])
def test_tag2text_swin_b_loads_the_official_layout(parity_dir, image_size):
    ref, sd = _official(parity_dir, "tag2text/tag2text_swin_keys.json")
    assert len(sd) == 1038
    with torch.device("meta"):
        model = build_tag2text_swin_b(image_size=image_size)
    load_official(model, convert_t2t({"model": sd}), source="tag2text_swin_14m.pth")
    if image_size == 384:
        assert sum(p.numel() for p in model.parameters()) == ref["num_parameters_unique"]  # 372,007,193
    # the official ties: the same tensors under both names
    state = model.state_dict(keep_vars=True)
    for e in ref["keys"]:
        if e.get("same_tensor_as"):
            assert state[e["key"]] is state[e["same_tensor_as"]], e["key"]
    # the model's keys are the official ones, less the buffers the official loader drops and the rebuilt ones
    dropped = {e["key"] for e in ref["keys"] if e["key"].endswith(("relative_position_index", "attn_mask",
                                                                   "position_ids"))}
    assert set(model.state_dict()) == set(sd) - dropped


def test_vision_multi_and_buffers(parity_dir):
    _, sd = _official(parity_dir, "tag2text/tag2text_swin_keys.json")
    old = {k.replace("tagging_head", "vision_multi"): v for k, v in sd.items()}
    assert convert_t2t({"model": old}).keys() == convert_t2t(sd).keys()
    assert not any(k.endswith(("attn_mask", "relative_position_index", "position_ids")) for k in convert_t2t(sd))


def test_relative_position_table_resizing():
    torch.manual_seed(0)
    table = torch.randn(13 * 13, 3)
    assert resize_relative_position_table(table, 169) is table  # same window: unchanged
    up = resize_relative_position_table(table, 23 * 23)  # a 224-px checkpoint used at 384 px
    assert up.shape == (529, 3) and up.dtype == torch.float32
    grid, big = table.view(13, 13, 3), up.view(23, 23, 3)
    # the official grid keeps offset 0 and puts the outermost source offsets on the outermost targets
    # (±(1 + q + ... + q^5) = ±11, up to the official bisection's 1e-6 on q): those values pass through the
    # interpolating spline (nearly) unchanged
    assert torch.allclose(big[11, 11], grid[6, 6], atol=1e-6)
    for (i, j), (k, m) in [((0, 0), (0, 0)), ((0, 12), (0, 22)), ((12, 6), (22, 11))]:
        assert torch.allclose(big[k, m], grid[i, j], atol=1e-3)
    # a bias linear in the offsets, laid on the official source grid (offsets 0, ±1, ±(1+q), ... with
    # 1 + q + ... + q^5 = 11), comes out as the same linear function of the integer target offsets (cubic
    # splines reproduce linear functions): rows are y, columns x
    q = next(r.real for r in np.roots([1, 1, 1, 1, 1, 1 - 11]) if abs(r.imag) < 1e-12 and r.real > 0)
    half = np.cumsum([q ** i for i in range(6)])
    coords = torch.tensor(np.concatenate([-half[::-1], [0.0], half]), dtype=torch.float32)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    linear = torch.stack([x.flatten(), 2 * y.flatten() - 0.5 * x.flatten()], dim=1)
    out = resize_relative_position_table(linear, 529).view(23, 23, 2)
    ty, tx = torch.meshgrid(torch.arange(-11.0, 12.0), torch.arange(-11.0, 12.0), indexing="ij")
    assert torch.allclose(out[..., 0], tx, atol=1e-3) and torch.allclose(out[..., 1], 2 * ty - 0.5 * tx, atol=1e-3)
    flat = torch.full((23 * 23, 2), 0.25)
    assert torch.allclose(resize_relative_position_table(flat, 169), torch.full((169, 2), 0.25), atol=1e-6)
    down = resize_relative_position_table(torch.randn(529, 4), 169)  # a 384-px checkpoint at 224 px
    assert down.shape == (169, 4) and torch.isfinite(down).all()
    with pytest.raises(ValueError, match="square"):
        resize_relative_position_table(torch.zeros(10, 2), 169)
