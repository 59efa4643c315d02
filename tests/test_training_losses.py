import itertools
import math

import pytest
import torch

from openvocab.training.losses import (MatchCosts, asymmetric_loss, box_cxcywh_to_xyxy, hungarian_match,
                                       set_prediction_losses)


def test_asymmetric_loss_by_hand():
    logits = torch.tensor([[0.0, 2.0]])
    targets = torch.tensor([[1.0, 0.0]])
    # positive (gamma_pos=0): -log(sigmoid(0)) = log 2
    # negative: p = sigmoid(2) = 0.880797; p_neg = min(1 - p + 0.05, 1) = 0.169203
    #           -(1 - p_neg)^7 * log(p_neg)
    p = 1 / (1 + math.exp(-2))
    pn = 1 - p + 0.05
    expected = math.log(2) + -((1 - pn) ** 7) * math.log(pn)
    assert asymmetric_loss(logits, targets).item() == pytest.approx(expected, rel=1e-5)
    # a tag not annotated for the image is ignored
    w = torch.tensor([[1.0, 0.0]])
    assert asymmetric_loss(logits, targets, weight=w).item() == pytest.approx(math.log(2), rel=1e-5)
    # easy negatives below the clip margin cost nothing
    assert asymmetric_loss(torch.tensor([[-5.0]]), torch.tensor([[0.0]])).item() == 0.0
    with pytest.raises(ValueError):
        asymmetric_loss(torch.zeros(2, 3), torch.zeros(2, 2))


def test_hungarian_match_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    B, Q, T, G = 1, 5, 6, 3
    logits = torch.randn(B, Q, T, generator=g)
    boxes = torch.rand(B, Q, 4, generator=g) * 0.5 + 0.25
    pm = torch.zeros(G, T)
    pm[0, 0] = pm[1, 2] = pm[1, 3] = pm[2, 5] = 1
    gt = torch.rand(G, 4, generator=g) * 0.5 + 0.25
    (qi, gi), = hungarian_match(logits, boxes, [pm], [gt])
    # brute force with the same cost
    c = MatchCosts()
    prob = logits[0].sigmoid()
    neg = (1 - c.alpha) * prob ** c.gamma * -(1 - prob + 1e-8).log()
    pos = c.alpha * (1 - prob) ** c.gamma * -(prob + 1e-8).log()
    from torchvision.ops import generalized_box_iou
    cost = (c.cls * ((pos - neg) @ pm.T / pm.sum(-1)) + c.bbox * torch.cdist(boxes[0], gt, p=1)
            - c.giou * generalized_box_iou(box_cxcywh_to_xyxy(boxes[0]), box_cxcywh_to_xyxy(gt)))
    best = min(itertools.permutations(range(Q), G), key=lambda qs: sum(cost[q, j] for j, q in enumerate(qs)))
    got = dict(zip(gi.tolist(), qi.tolist()))
    assert [got[j] for j in range(G)] == list(best)


def test_set_losses_fall_when_prediction_approaches_target():
    T = 4
    pm = torch.tensor([[0, 1.0, 1.0, 0]])
    gt = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    mask = torch.tensor([[True, True, True, False]])
    good_logits = torch.full((1, 3, T), -8.0)
    good_logits[0, 1, 1:3] = 8.0
    good_boxes = torch.tensor([[[0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2], [0.9, 0.9, 0.1, 0.1]]])
    good = set_prediction_losses(good_logits, good_boxes, mask, [pm], [gt])
    bad = set_prediction_losses(torch.zeros(1, 3, T), torch.full((1, 3, 4), 0.3), mask, [pm], [gt])
    assert good["loss_bbox"].item() == pytest.approx(0, abs=1e-6)
    assert good["loss_giou"].item() == pytest.approx(0, abs=1e-6)
    for k in good:
        assert good[k].item() < bad[k].item()
    empty = set_prediction_losses(torch.zeros(1, 3, T, requires_grad=True), torch.rand(1, 3, 4), mask,
                                  [torch.zeros(0, T)], [torch.zeros(0, 4)])
    assert empty["loss_bbox"].item() == 0 and empty["loss_cls"].item() > 0
