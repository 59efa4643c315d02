"""Pure-PyTorch multi-scale deformable attention: hand-computed bilinear samples."""
from __future__ import annotations

import torch

from grounding.groundingdino.deformable_attention import MSDeformAttn, ms_deform_attn


def _value(h, w):
    return torch.arange(h * w, dtype=torch.float32).view(1, h * w, 1, 1)


def test_sample_at_pixel_centre_and_between():
    shapes = torch.tensor([[2, 3]])
    v = _value(2, 3)  # map [[0,1,2],[3,4,5]]
    # centre of pixel (x=1, y=1) -> value 4; midway between (0,0) and (1,0) -> 0.5
    loc = torch.tensor([[1.5 / 3, 1.5 / 2], [1.0 / 3, 0.5 / 2]]).view(1, 2, 1, 1, 1, 2)
    aw = torch.ones(1, 2, 1, 1, 1)
    out = ms_deform_attn(v, shapes, loc, aw)
    torch.testing.assert_close(out.view(-1), torch.tensor([4.0, 0.5]))


def test_zero_padding_outside_and_weighted_levels():
    shapes = torch.tensor([[2, 2], [1, 1]])
    v = torch.cat([_value(2, 2), torch.full((1, 1, 1, 1), 10.0)], 1)
    # level 0: left edge at x=0 (half outside -> half of value 0/2 -> average with zero pad); level 1 centre -> 10
    loc = torch.tensor([[0.0, 0.25], [0.5, 0.5]]).view(1, 1, 1, 2, 1, 2)
    aw = torch.tensor([0.25, 0.75]).view(1, 1, 1, 2, 1)
    out = ms_deform_attn(v, shapes, loc, aw)
    # level 0 sample at x=-0.5 px (between pad and pixel 0 of row 0 = 0) -> 0; 0.25*0 + 0.75*10
    torch.testing.assert_close(out.view(-1), torch.tensor([7.5]))
    loc2 = torch.tensor([[1.0, 0.25], [0.5, 0.5]]).view(1, 1, 1, 2, 1, 2)  # right edge of row 0: (1 + 0)/2
    out2 = ms_deform_attn(v, shapes, loc2, aw)
    torch.testing.assert_close(out2.view(-1), torch.tensor([0.25 * 0.5 + 7.5]))


def test_module_shapes_masking_and_bf16():
    torch.manual_seed(0)
    m = MSDeformAttn(embed_dim=32, num_heads=4, num_levels=2, num_points=2).eval()
    shapes = torch.tensor([[4, 5], [2, 3]])
    val = torch.randn(2, 26, 32)
    q = torch.randn(2, 7, 32)
    ref2 = torch.rand(2, 7, 2, 2)
    ref4 = torch.cat([ref2, torch.full_like(ref2, 0.2)], -1)
    kpm = torch.zeros(2, 26, dtype=torch.bool)
    with torch.no_grad():
        o2 = m(q, ref2, val, shapes, kpm)
        o4 = m(q, ref4, val, shapes, kpm)
        # masked values are zeroed: changing them does not change the output
        kpm[:, -3:] = True
        val2 = val.clone()
        val2[:, -3:] = 1e3
        torch.testing.assert_close(m(q, ref2, val, shapes, kpm), m(q, ref2, val2, shapes, kpm))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ob = m(q, ref2, val, shapes, None)
    assert o2.shape == o4.shape == (2, 7, 32)
    assert torch.isfinite(ob.float()).all()
    torch.testing.assert_close(ob.float(), o2, atol=0.1, rtol=0.1)
