"""ATSS assigner (hand case + a loop-by-loop reference) and the delta box coder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reference_model.detclipv2.assigner import atss_assign, centerness_targets
from reference_model.detclipv2.box_coder import DeltaBoxCoder, make_anchors


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def reference_atss(levels, gts, topk, eps=0.01):
    """Plain-Python ATSS written from the paper's algorithm box, one box and one level at a time."""
    anchors = [a for level in levels for a in level]
    best = [(-1.0, -1)] * len(anchors)
    for g, gt in enumerate(gts):
        gc = ((gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2)
        cands, start = [], 0
        for level in levels:
            d = [math.dist(((a[0] + a[2]) / 2, (a[1] + a[3]) / 2), gc) for a in level]
            cands += [start + i for i in sorted(range(len(level)), key=lambda i: (d[i], i))[:topk]]
            start += len(level)
        ious = [_iou(anchors[i], gt) for i in cands]
        thr = float(np.mean(ious) + np.std(ious, ddof=1))
        for i, iou in zip(cands, ious, strict=True):
            cx, cy = (anchors[i][0] + anchors[i][2]) / 2, (anchors[i][1] + anchors[i][3]) / 2
            inside = min(cx - gt[0], cy - gt[1], gt[2] - cx, gt[3] - cy) > eps
            if iou >= thr and inside and iou > best[i][0]:
                best[i] = (iou, g)
    return [g for _, g in best]


def test_hand_case_one_level():
    # GT [0,0,10,10]; closest 3 centres: A0 (IoU 1), A1 (8/12), A4 (7/13) → thr = mean + std ≈ 0.97
    anchors = torch.tensor(
        [[0, 0, 10, 10], [2, 0, 12, 10], [5, 0, 15, 10], [20, 0, 30, 10], [-3, 0, 7, 10]], dtype=torch.float32
    )
    matched = atss_assign([anchors], torch.tensor([[0.0, 0, 10, 10]]), topk=3)
    assert matched.tolist() == [0, -1, -1, -1, -1]


def test_centre_outside_box_is_never_positive():
    # the big anchor has the best IoU (100/448) and alone clears mean + std of the five candidates,
    # but its centre (14, 5) lies outside the box, so nothing is positive; four inside anchors at IoU 0.16
    gt = torch.tensor([[0.0, 0, 10, 10]])
    anchors = torch.tensor([[-2, -2, 30, 12]] + [[3, 3, 7, 7]] * 4, dtype=torch.float32)
    assert atss_assign([anchors], gt, topk=5).tolist() == [-1] * 5
    moved = anchors.clone()
    moved[0] = torch.tensor([-10.0, -2, 22, 12])  # same size, centre (6, 5) now inside
    assert atss_assign([moved], gt, topk=5).tolist() == [0, -1, -1, -1, -1]


@pytest.mark.parametrize("seed", range(5))
def test_matches_loop_reference_on_random_scenes(seed):
    rng = np.random.default_rng(seed)
    levels = make_anchors([(8, 10), (4, 5), (2, 3)], (8, 16, 32), scale=4.0)
    xy = rng.uniform(0, 60, size=(4, 2))
    wh = rng.uniform(8, 40, size=(4, 2))
    gts = torch.tensor(np.concatenate([xy, xy + wh], 1), dtype=torch.float32)
    got = atss_assign(levels, gts, topk=9).tolist()
    want = reference_atss([lv.tolist() for lv in levels], gts.tolist(), topk=9)
    assert got == want
    assert sum(g >= 0 for g in got) >= len(gts)  # every box got at least one positive here


def test_no_ground_truth_means_all_background():
    levels = make_anchors([(2, 2)], (8,), scale=4.0)
    assert atss_assign(levels, torch.zeros((0, 4))).tolist() == [-1] * 4


def test_centerness_hand_values():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    points = torch.tensor([[5.0, 5], [2.0, 5]])  # centre → 1; l=2,r=8,t=b=5 → sqrt(2/8)
    assert centerness_targets(points, boxes).tolist() == pytest.approx([1.0, 0.5])


def test_make_anchors_layout():
    (level,) = make_anchors([(2, 3)], (8,), scale=4.0)
    assert level.shape == (6, 4)
    assert level[0].tolist() == [-16, -16, 16, 16]
    assert level[1].tolist() == [-8, -16, 24, 16]  # row-major: x advances first
    assert level[3].tolist() == [-16, -8, 16, 24]


def test_box_coder_hand_case_and_round_trip():
    coder = DeltaBoxCoder((10.0, 10.0, 5.0, 5.0))
    anchor = torch.tensor([[0.0, 0, 10, 10]])
    deltas = coder.encode(torch.tensor([[0.0, 0, 20, 10]]), anchor)
    assert deltas[0].tolist() == pytest.approx([5.0, 0.0, 5 * math.log(2), 0.0], abs=1e-5)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (50, 2))
    boxes = torch.tensor(np.concatenate([xy, xy + rng.uniform(2, 80, (50, 2))], 1), dtype=torch.float32)
    anchors = torch.tensor(np.concatenate([xy + 3, xy + 3 + rng.uniform(2, 80, (50, 2))], 1), dtype=torch.float32)
    back = coder.decode(coder.encode(boxes, anchors), anchors)
    torch.testing.assert_close(back, boxes, atol=1e-3, rtol=1e-5)
    batched = coder.decode(coder.encode(boxes, anchors)[None].repeat(2, 1, 1), anchors[None])
    torch.testing.assert_close(batched[1], boxes, atol=1e-3, rtol=1e-5)
