"""Every loss against a hand computation written out in numpy, plus the per-kind loss wiring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from detclip_bench.schema import DataKind
from reference_model.detclipv2 import DetCLIPv2, InputSpec, collate_train
from reference_model.detclipv2.alignment import (
    RegionTextLogits,
    classification_loss,
    contrastive_loss,
    select_proposals,
    word_region_scores,
)
from reference_model.detclipv2.assigner import atss_assign
from reference_model.detclipv2.atss_head import ATSSHead, HeadOutputs
from reference_model.detclipv2.box_coder import DeltaBoxCoder, make_anchors
from reference_model.detclipv2.noun_phrases import NounPhraseExtractor

from .conftest import VOCAB, caption_sample, det_sample, tiny_config


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_smoothed_ce(logits, targets, eps):
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    n = logits.shape[1]
    q = np.full(logits.shape, eps / n)
    q[np.arange(len(targets)), targets] += 1 - eps
    return float(-(q * logp).sum(1).mean())


def np_giou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (hull - union) / hull


def test_head_losses_match_hand_formulas():
    torch.manual_seed(0)
    anchors = make_anchors([(4, 4)], (8,), scale=4.0)
    k, m = 16, 3
    gt_boxes = [torch.tensor([[2.0, 3.0, 20.0, 22.0], [14.0, 10.0, 30.0, 30.0]])]
    gt_labels = [torch.tensor([2, 0])]
    outputs = HeadOutputs(
        embeddings=torch.zeros(1, k, 4),
        deltas=torch.randn(1, k, 4) * 0.3,
        centerness=torch.randn(1, k),
        level_sizes=[(4, 4)],
    )
    logits = torch.randn(1, k, m)
    coder = DeltaBoxCoder()
    head = ATSSHead(8, 1, 4, num_convs=1, gn_groups=4)
    got = head.compute_loss(outputs, logits, anchors, gt_boxes, gt_labels, coder, topk=9)

    matched = atss_assign(anchors, gt_boxes[0], topk=9).numpy()
    pos = np.nonzero(matched >= 0)[0]
    assert len(pos) >= 2
    target = np.zeros((k, m))
    target[pos, gt_labels[0].numpy()[matched[pos]]] = 1
    p = np_sigmoid(logits[0].numpy().astype(np.float64))
    focal = np.where(target == 1, -0.25 * (1 - p) ** 2 * np.log(p), -0.75 * p**2 * np.log(1 - p))
    assert got["loss_align"].item() == pytest.approx(focal.sum() / len(pos), rel=1e-5)

    anc, gts = anchors[0].numpy(), gt_boxes[0].numpy()
    weights, gious, bces = [], [], []
    for a in pos:
        box = gts[matched[a]]
        cx, cy = (anc[a, 0] + anc[a, 2]) / 2, (anc[a, 1] + anc[a, 3]) / 2
        left, t, r, b = cx - box[0], cy - box[1], box[2] - cx, box[3] - cy
        c = math.sqrt(min(left, r) / max(left, r) * min(t, b) / max(t, b))
        d = outputs.deltas[0, a].numpy() / np.array([10, 10, 5, 5])
        w, h = anc[a, 2] - anc[a, 0], anc[a, 3] - anc[a, 1]
        pcx, pcy, pw, ph = cx + d[0] * w, cy + d[1] * h, w * math.exp(d[2]), h * math.exp(d[3])
        pred = [pcx - pw / 2, pcy - ph / 2, pcx + pw / 2, pcy + ph / 2]
        weights.append(c)
        gious.append(1 - np_giou(pred, box))
        x = float(outputs.centerness[0, a])
        bces.append(-(c * math.log(np_sigmoid(x)) + (1 - c) * math.log(1 - np_sigmoid(x))))
    assert got["loss_giou"].item() == pytest.approx(np.dot(weights, gious) / sum(weights), rel=1e-4)
    assert got["loss_center"].item() == pytest.approx(sum(bces) / len(pos), rel=1e-5)

    only_align = head.compute_loss(
        outputs, logits, anchors, gt_boxes, gt_labels, coder, box_loss=False, center_loss=False
    )
    assert set(only_align) == {"loss_align"}


def test_region_text_logits_initial_prior_and_formula():
    layer = RegionTextLogits(math.log(1 / 0.07), prior=0.01)
    regions = torch.tensor([[[3.0, 0.0], [1.0, 1.0]]])
    texts = torch.tensor([[0.0, 2.0], [5.0, 0.0]])
    out = layer(regions, texts)
    assert torch.sigmoid(out[0, 0, 0]).item() == pytest.approx(0.01)  # cos 0 → the prior
    assert out[0, 0, 1].item() == pytest.approx(1 / 0.07 - math.log(99), rel=1e-5)
    assert out[0, 1, 0].item() == pytest.approx(math.sqrt(0.5) / 0.07 - math.log(99), rel=1e-5)


def _contrastive_case():
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    regions = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [-1.0, 0.0]]])
    valid = torch.tensor([[True, True], [True, False]])
    return texts, [[0, 1], [2]], regions, valid


def test_word_region_scores_mean_of_max_over_valid_regions():
    texts, captions, regions, valid = _contrastive_case()
    s = word_region_scores(texts, captions, regions, valid)
    r = math.sqrt(0.5)
    # invalid region [-1, 0] would give caption 0 a cos of -1; it is masked out
    torch.testing.assert_close(s, torch.tensor([[1.0, r], [r, 1.0]]))


def test_contrastive_loss_matches_label_smoothed_ce_by_hand():
    texts, captions, regions, valid = _contrastive_case()
    s = word_region_scores(texts, captions, regions, valid)
    got = contrastive_loss(s, torch.tensor([0, 1]), tau=0.5, label_smoothing=0.1)
    r = math.sqrt(0.5)
    want = np_smoothed_ce(np.array([[1.0, r], [r, 1.0]]) / 0.5, np.array([0, 1]), 0.1)
    assert got.item() == pytest.approx(want, rel=1e-6)
    assert want == pytest.approx(math.log(1 + math.exp(2 * r - 2)) + 0.05 * (2 - 2 * r), rel=1e-6)


def test_classification_loss_by_hand():
    region = torch.tensor([[2.0, 0.0]])
    classes = torch.tensor([[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    got = classification_loss(region, classes, torch.tensor([0]), tau=0.5, label_smoothing=0.1)
    want = np_smoothed_ce(np.array([[2.0, 0.0, -2.0]]), np.array([0]), 0.1)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_select_proposals_nms_then_topk():
    img0 = [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [40, 40, 50, 50]]  # box 1: IoU .68 with box 0
    img1 = [[0, 0, 10, 10]] * 4
    boxes = torch.tensor([img0, img1], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.8, 0.5, 0.1], [0.1, 0.2, 0.7, 0.3]])
    index, valid = select_proposals(boxes, scores, top_k=2, nms_iou=0.6)
    assert index[0].tolist() == [0, 2]
    assert valid.tolist() == [[True, True], [True, False]]
    assert index[1, 0].item() == 2


def _batch(kind, samples, size):
    spec = InputSpec(kind=kind, size=size, flip=False, concepts_per_image=6)
    return collate_train(
        samples, spec, vocabulary=VOCAB, rng=np.random.default_rng(0), noun_phrases=NounPhraseExtractor("")
    )


def test_total_loss_uses_the_documented_weights_per_kind(tiny_model):
    facts = {"concepts_per_image", "definition_share"}  # logged beside the losses, not part of them
    det = tiny_model(_batch(DataKind.DETECTION, [det_sample(0)], (96, 64)))
    assert set(det) == {"loss", "loss_align", "loss_giou", "loss_center", *facts}
    assert det["concepts_per_image"].item() == 6
    want = det["loss_align"] + 2.0 * det["loss_giou"] + 1.0 * det["loss_center"]
    assert det["loss"].item() == pytest.approx(want.item(), rel=1e-6)
    grounding = tiny_model(_batch(DataKind.GROUNDING, [det_sample(0, DataKind.GROUNDING)], (96, 64)))
    assert set(grounding) == {"loss", "loss_align", *facts}
    it = tiny_model(_batch(DataKind.IMAGE_TEXT, [caption_sample(0), caption_sample(1)], (96, 96)))
    assert it["contrastive_captions"].item() == 2 == it["contrastive_images"].item()  # one process: no gather
    assert it["loss"].item() == pytest.approx(0.1 * it["loss_contrastive"].item(), rel=1e-6)
    cls = tiny_model(_batch(DataKind.CLASSIFICATION, [caption_sample(0, DataKind.CLASSIFICATION)], (96, 96)))
    assert cls["loss"].item() == pytest.approx(0.1 * cls["loss_classification"].item(), rel=1e-6)


@pytest.mark.parametrize("deformable", [True, False])
def test_deformable_module_routes_alignment_gradient_into_regression_tower(deformable):
    torch.manual_seed(0)
    model = DetCLIPv2(tiny_config(deformable=deformable))
    batch = _batch(DataKind.GROUNDING, [det_sample(0, DataKind.GROUNDING)], (96, 64))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # DCNv2 starts with zero offset weights: the path opens after one step
        opt.zero_grad()
        model(batch)["loss"].backward()  # grounding: alignment only, no box loss
        opt.step()
    grad = model.head.reg_tower[0].weight.grad
    if deformable:
        assert grad is not None and grad.abs().sum() > 0
    else:
        assert grad is None or grad.abs().sum() == 0
        assert not hasattr(model.head, "dcn")


@pytest.mark.parametrize("kind", [DataKind.IMAGE_TEXT, DataKind.CLASSIFICATION])
def test_box_free_steps_leave_unsupervised_branches_without_gradient(tiny_model, kind):
    """No gradient, not a zero one: AdamW then leaves those parameters alone on box-free steps."""
    batch = _batch(kind, [caption_sample(0, kind), caption_sample(1, kind)], (96, 96))
    tiny_model(batch)["loss"].backward()
    grads = {n: p.grad for n, p in tiny_model.named_parameters()}
    for name in ("head.bbox_pred.weight", "head.centerness.weight", "head.logits.logit_scale", "head.logits.bias"):
        assert grads[name] is None, name
    assert grads["head.embed.weight"] is not None and grads["head.embed.weight"].abs().sum() > 0
    assert tiny_model.loss_weight(kind) == 0.1 and tiny_model.loss_weight(DataKind.DETECTION) == 1.0


def test_detection_steps_still_join_every_branch(tiny_model):
    tiny_model(_batch(DataKind.GROUNDING, [det_sample(0, DataKind.GROUNDING)], (96, 64)))["loss"].backward()
    assert tiny_model.head.bbox_pred.weight.grad is not None  # zero-weighted: the one optimizer steps it as before
