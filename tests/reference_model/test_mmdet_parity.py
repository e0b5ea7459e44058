"""Where the reference model now follows mmdetection's ATSS, or deliberately departs from it
(docs/distributed_and_losses.md): the P6→P7 extra convs, the GIoU normaliser, padding anchors,
and federated (LVIS) negatives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torchvision.ops import FeaturePyramidNetwork, generalized_box_iou_loss, sigmoid_focal_loss
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from detclip_bench.schema import DataKind
from reference_model.detclipv2 import DetCLIPv2, InputSpec, collate_train
from reference_model.detclipv2.atss_head import ATSSHead, HeadOutputs
from reference_model.detclipv2.box_coder import DeltaBoxCoder, anchors_inside, make_anchors
from reference_model.detclipv2.fpn import FPN

from .conftest import VOCAB, det_sample

CODER = DeltaBoxCoder()


def _head() -> ATSSHead:
    return ATSSHead(8, 2, 4, num_convs=1, gn_groups=4)


# ------------------------------------------------------------------ (a) P7 = conv(P6), no ReLU


def test_p7_is_a_plain_conv_of_p6_and_keeps_its_negative_values():
    torch.manual_seed(0)
    fpn = FPN([8, 16, 32], out_channels=16, num_levels=5)
    feats = [torch.randn(1, c, s, s) for c, s in ((8, 32), (16, 16), (32, 8))]
    outs = fpn(feats)
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4, 2]
    extra = fpn.fpn.extra_blocks
    torch.testing.assert_close(outs[3], extra.p6(outs[2]))  # P6 from P5's *output* ('on_output')
    assert (outs[3] < 0).any()
    torch.testing.assert_close(outs[4], extra.p7(outs[3]))  # P6 as is, negatives included
    assert not torch.allclose(outs[4], extra.p7(outs[3].relu()))  # torchvision's LastLevelP6P7 would differ


def test_fpn_state_dict_keys_unchanged_so_old_checkpoints_load():
    old = FeaturePyramidNetwork([8, 16, 32], 16, extra_blocks=LastLevelP6P7(16, 16))
    fpn = FPN([8, 16, 32], out_channels=16, num_levels=5)
    assert set(fpn.fpn.state_dict()) == set(old.state_dict())
    fpn.fpn.load_state_dict(old.state_dict(), strict=True)
    assert FPN([8, 16, 32], out_channels=16, num_levels=3).fpn.extra_blocks is None  # mini: P3–P5 only


# ------------------------------------------------------------------ (b) GIoU normaliser clamped at 1


def test_giou_normaliser_is_the_centerness_target_sum_clamped_at_one():
    # three anchors: one near the box's corner (a single positive with centerness 1/9), two far away
    anchors = [torch.tensor([[-4.0, -4.0, 6.0, 6.0], [25.0, 25.0, 35.0, 35.0], [40.0, 40.0, 50.0, 50.0]])]
    gt = [torch.tensor([[0.0, 0.0, 10.0, 10.0]])]
    torch.manual_seed(0)
    outputs = HeadOutputs(torch.zeros(1, 3, 4), torch.randn(1, 3, 4) * 0.2, torch.randn(1, 3), [(1, 3)])
    got = _head().compute_loss(outputs, torch.randn(1, 3, 1), anchors, gt, [torch.tensor([0])], CODER)
    ctr = 1 / 9  # sqrt(1/9 · 1/9) at centre (1, 1) of [0, 0, 10, 10]
    giou = generalized_box_iou_loss(CODER.decode(outputs.deltas[0, :1], anchors[0][:1]), gt[0])
    # mmdetection: Σ ctr·giou / max(Σ ctr, 1); the old clamp at 1e-6 gave giou itself (a 9× larger loss)
    assert got["loss_giou"].item() == pytest.approx((ctr * giou).item(), rel=1e-5)


# ------------------------------------------------------------------ (c) padding anchors are ignored


def _grid(h: int, w: int, strides=(8, 16)) -> list[tuple[int, int]]:
    return [(-(-h // s), -(-w // s)) for s in strides]


def _embed(small: torch.Tensor, small_sizes, big_sizes, fill: torch.Tensor) -> torch.Tensor:
    """Copy per-anchor values of a small grid (K_small, …) into a larger one at the same (y, x)."""
    out, s0, b0 = fill.clone(), 0, 0
    for (sh, sw), (bh, bw) in zip(small_sizes, big_sizes, strict=True):
        src = small[s0 : s0 + sh * sw].reshape(sh, sw, *small.shape[1:])
        dst = out[b0 : b0 + bh * bw].reshape(bh, bw, *out.shape[1:])
        dst[:sh, :sw] = src
        s0, b0 = s0 + sh * sw, b0 + bh * bw
    return out


def test_padding_does_not_change_an_images_losses():
    strides, size = (8, 16), (40, 56)  # the image's own (h, w); its tensor is padded to 48×64 by the divisor
    small_sizes, big_sizes = _grid(48, 64), _grid(96, 112)  # the same image in a batch padded to 96×112
    small_anchors = make_anchors(small_sizes, strides, 4.0)
    big_anchors = make_anchors(big_sizes, strides, 4.0)
    k_small, k_big, m = sum(len(a) for a in small_anchors), sum(len(a) for a in big_anchors), 3
    gt = [torch.tensor([[30.0, 4.0, 55.0, 39.0], [2.0, 10.0, 20.0, 30.0]])]  # one touching the image's corner
    labels = [torch.tensor([1, 2])]
    torch.manual_seed(0)
    small = {"logits": torch.randn(k_small, m), "deltas": torch.randn(k_small, 4) * 0.2, "ctr": torch.randn(k_small)}
    big = {key: _embed(v, small_sizes, big_sizes, torch.randn(k_big, *v.shape[1:]) * 3) for key, v in small.items()}

    def losses(values, anchors, sizes, image_sizes):
        outputs = HeadOutputs(torch.zeros(1, len(values["ctr"]), 4), values["deltas"][None], values["ctr"][None], sizes)
        return _head().compute_loss(
            outputs, values["logits"][None], anchors, gt, labels, CODER, image_sizes=image_sizes
        )

    a = losses(small, small_anchors, small_sizes, [size])
    b = losses(big, big_anchors, big_sizes, [size])
    for key in ("loss_align", "loss_giou", "loss_center"):
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=0)
    # without the image size, the padding anchors' random logits enter the focal loss as negatives
    assert losses(big, big_anchors, big_sizes, None)["loss_align"] > 1.5 * b["loss_align"]


def test_anchors_inside_is_the_centre_in_the_images_own_region():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 0.0, 60.0, 10.0], [0.0, 36.0, 10.0, 46.0]])
    inside = anchors_inside(anchors, [(40, 56), (64, 64)])
    assert inside.tolist() == [[True, True, False], [True, True, True]]  # centres (5,5), (55,5), (5,41)


# ------------------------------------------------------------------ (d) federated (LVIS) negatives


def _federated_case():
    torch.manual_seed(1)
    anchors = make_anchors([(4, 4)], (8,), scale=4.0)
    gt = [torch.tensor([[2.0, 3.0, 20.0, 22.0], [14.0, 10.0, 30.0, 30.0]])]
    outputs = HeadOutputs(torch.zeros(1, 16, 4), torch.randn(1, 16, 4) * 0.3, torch.randn(1, 16), [(4, 4)])
    return anchors, gt, [torch.tensor([0, 1])], outputs, torch.randn(1, 16, 4)


def test_negative_mask_keeps_positives_and_verified_columns_only():
    anchors, gt, labels, outputs, logits = _federated_case()
    # columns: 0 positive (exhaustive), 1 positive (not exhaustive), 2 verified absent, 3 never verified
    mask = torch.tensor([[True, False, True, False]])
    got = _head().compute_loss(outputs, logits, anchors, gt, labels, CODER, negative_mask=mask)
    full = _head().compute_loss(outputs, logits, anchors, gt, labels, CODER)
    targets = torch.zeros_like(logits)
    from reference_model.detclipv2.assigner import atss_assign

    matched = atss_assign(anchors, gt[0])
    pos = torch.nonzero(matched >= 0).squeeze(1)
    targets[0, pos, labels[0][matched[pos]]] = 1
    counted = (targets > 0) | mask[:, None, :]
    focal = sigmoid_focal_loss(logits, targets, reduction="none")
    assert got["loss_align"].item() == pytest.approx((focal * counted).sum().item() / len(pos), rel=1e-6)
    assert counted[0, :, 1].sum() == (targets[0, :, 1] > 0).sum() > 0  # not exhaustive: its positives only
    assert not counted[0, :, 3].any()
    for key in ("loss_giou", "loss_center"):  # box losses are about positives: untouched
        torch.testing.assert_close(got[key], full[key])
    # the loss does not see unverified entries at all
    noisy = logits.clone()
    noisy[0, :, 3] += 5.0
    noisy[0, :, 1] = torch.where(targets[0, :, 1] > 0, noisy[0, :, 1], noisy[0, :, 1] + 5.0)
    torch.testing.assert_close(
        _head().compute_loss(outputs, noisy, anchors, gt, labels, CODER, negative_mask=mask)["loss_align"],
        got["loss_align"],
    )


VOCAB_IDS = tuple(replace(c, category_id=i + 1) for i, c in enumerate(VOCAB))  # ids 1..8


def _lvis_sample(i: int, neg: list[int], not_exhaustive: list[int]):
    s = det_sample(i)
    by_name = {c.name: c for c in VOCAB_IDS}
    concepts = tuple(by_name[c.name] for c in s.concepts)
    return replace(s, concepts=concepts, meta={"neg_category_ids": neg, "not_exhaustive_category_ids": not_exhaustive})


def test_collate_builds_verified_negatives_from_lvis_meta():
    # det_sample(0) shows red (id 1) and green (id 2); green is not exhaustively annotated
    lvis = _lvis_sample(0, neg=[5, 6], not_exhaustive=[2])
    o365 = det_sample(1)  # no federated meta: exhaustive, negatives from the whole vocabulary
    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64), concepts_per_image=6, flip=False)
    only = collate_train(
        [lvis], replace(spec, federated_fill=False), vocabulary=VOCAB_IDS, rng=np.random.default_rng(0)
    )
    prompts = {c.category_id: c.prompt() for c in VOCAB_IDS}
    # positives, then only the verified-absent categories as negatives (no top-up with unverified ones)
    assert set(only.concepts) == {prompts[i] for i in (1, 2, 5, 6)}
    assert only.verified_negatives == [frozenset({prompts[1], prompts[5], prompts[6]})]
    # the default (appendix Table 2's M): the verified-absent ones, then other categories up to M = 6;
    # the prompts that may be negatives are the same
    filled = collate_train([lvis], spec, vocabulary=VOCAB_IDS, rng=np.random.default_rng(0))
    assert len(filled.concepts) == 6 and set(only.concepts) < set(filled.concepts)
    assert filled.verified_negatives == only.verified_negatives

    mixed = collate_train([lvis, o365], spec, vocabulary=VOCAB_IDS, rng=np.random.default_rng(0))
    assert mixed.verified_negatives[0] == only.verified_negatives[0] and mixed.verified_negatives[1] is None
    assert len(mixed.concepts) > 4  # the O365 image sampled other negatives

    plain = collate_train([o365], spec, vocabulary=VOCAB_IDS, rng=np.random.default_rng(0))
    assert plain.verified_negatives == [None]


def test_negative_mask_follows_the_gathered_concept_list():
    lvis = _lvis_sample(0, neg=[5], not_exhaustive=[])
    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64), concepts_per_image=6, flip=False)
    batch = collate_train([lvis, det_sample(1)], spec, vocabulary=VOCAB_IDS, rng=np.random.default_rng(0))
    prompts = {c.category_id: c.prompt() for c in VOCAB_IDS}
    # the global list (all ranks, de-duplicated) can hold concepts this rank never saw, in any order
    concepts = [prompts[8], prompts[5], prompts[2], "a concept from another rank", prompts[1]]
    mask = DetCLIPv2._negative_mask(batch, concepts)
    assert mask.tolist() == [[False, True, True, False, True], [True] * 5]
    exhaustive = collate_train([det_sample(1)], spec, vocabulary=VOCAB_IDS, rng=np.random.default_rng(0))
    assert DetCLIPv2._negative_mask(exhaustive, concepts) is None


def test_model_forward_applies_padding_and_federated_masks(tiny_model):
    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64), concepts_per_image=4, flip=False)
    batch = collate_train(
        [_lvis_sample(0, neg=[5], not_exhaustive=[2]), det_sample(1)],
        spec,
        vocabulary=VOCAB_IDS,
        rng=np.random.default_rng(0),
    )
    seen = {}
    original = tiny_model.head.compute_loss

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    tiny_model.head.compute_loss = spy
    losses = tiny_model(batch)
    assert torch.isfinite(losses["loss"])
    assert seen["image_sizes"] == batch.image_sizes
    assert seen["negative_mask"].shape == (2, len(batch.concepts)) and not seen["negative_mask"][0].all()
    assert seen["negative_mask"][1].all()
