"""The alignment loss in column chunks equals the plain (B, K, M) computation in value and gradient.

The plain reference here is written out with torchvision's ``sigmoid_focal_loss`` on the full score
tensor, independently of the head's code; the chunked path must agree to 1e-6 in the loss and in the
gradients of the region embeddings, the text embeddings, the logit scale and the bias, with the
padding and negative masks on, whatever the chunk size.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from detclip_bench.schema import DataKind
from reference_model.detclipv2 import InputSpec, collate_train
from reference_model.detclipv2.alignment import FocalTargets, RegionTextLogits, focal_alignment_loss
from reference_model.detclipv2.assigner import atss_assign
from reference_model.detclipv2.atss_head import ATSSHead, HeadOutputs
from reference_model.detclipv2.box_coder import DeltaBoxCoder, anchors_inside, make_anchors
from tests.reference_model.conftest import VOCAB, det_sample

B, D, M = 2, 8, 37
LEVELS = [(8, 8), (4, 4)]
STRIDES = (8, 16)
SIZES = [(64, 60), (40, 64)]  # image 1 leaves padding: its outside anchors count for nothing


def _case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    anchors = make_anchors(LEVELS, STRIDES, scale=4.0)
    k = sum(h * w for h, w in LEVELS)
    boxes = [torch.tensor([[4.0, 6.0, 30.0, 40.0], [30.0, 20.0, 60.0, 60.0]]), torch.tensor([[8.0, 4.0, 50.0, 30.0]])]
    labels = [torch.tensor([3, 30]), torch.tensor([3])]
    emb = torch.randn(B, k, D, generator=g).requires_grad_()
    texts = torch.randn(M, D, generator=g).requires_grad_()
    outputs = HeadOutputs(emb, torch.randn(B, k, 4, generator=g) * 0.3, torch.randn(B, k, generator=g), LEVELS)
    neg = torch.rand(B, M, generator=g) > 0.3
    return anchors, boxes, labels, outputs, texts, neg


def _head() -> ATSSHead:
    torch.manual_seed(0)
    head = ATSSHead(8, 2, D, num_convs=1, gn_groups=4)
    with torch.no_grad():  # away from the initial values, so their gradients are not special
        head.logits.logit_scale.fill_(2.1)
        head.logits.bias.fill_(-3.3)
    return head


def _plain_loss(head, anchors, boxes, labels, outputs, texts, neg):
    """The reference: every score at once, then the masked focal sum over the positive count."""
    logits = head.logits(outputs.embeddings, texts)  # (B, K, M)
    all_anchors = torch.cat(anchors)
    inside = anchors_inside(all_anchors, SIZES)
    targets = torch.zeros_like(logits)
    npos = 0
    for i in range(B):
        matched = atss_assign(anchors, boxes[i], 9, valid=inside[i])
        pos = torch.nonzero(matched >= 0).squeeze(1)
        targets[i, pos, labels[i][matched[pos]]] = 1.0
        npos += len(pos)
    counted = ((targets > 0) | neg[:, None, :]) & inside[:, :, None]
    focal = sigmoid_focal_loss(logits, targets, reduction="none")
    return (focal * counted).sum() / max(npos, 1)


def _grads(loss, head, outputs, texts):
    params = [outputs.embeddings, texts, head.logits.logit_scale, head.logits.bias]
    return [g.detach() for g in torch.autograd.grad(loss, params)]


@pytest.mark.parametrize("max_elements", [1, 7 * 80, 1 << 24])  # 1 column per chunk, 7, all at once
def test_chunked_loss_and_gradients_equal_the_plain_computation(max_elements):
    anchors, boxes, labels, outputs, texts, neg = _case()
    head = _head()
    want = _plain_loss(head, anchors, boxes, labels, outputs, texts, neg)
    got = head.compute_loss(
        outputs,
        None,
        anchors,
        boxes,
        labels,
        DeltaBoxCoder(),
        box_loss=False,
        center_loss=False,
        image_sizes=SIZES,
        negative_mask=neg,
        texts=texts,
        max_elements=max_elements,
    )["loss_align"]
    assert want.item() > 0.1
    assert abs(got.item() - want.item()) <= 1e-6 * max(1.0, abs(want.item()))
    for g_got, g_want in zip(_grads(got, head, outputs, texts), _grads(want, head, outputs, texts), strict=True):
        assert g_want.abs().max() > 1e-4  # not vacuous
        torch.testing.assert_close(g_got, g_want, rtol=1e-6, atol=1e-6)


def test_chunks_never_hold_more_than_max_elements_scores(monkeypatch):
    *_, outputs, texts, _ = _case(1)
    widths = []
    original = FocalTargets.summed_loss

    def spy(self, logits, start):
        widths.append(logits.shape)
        return original(self, logits, start)

    monkeypatch.setattr(FocalTargets, "summed_loss", spy)
    k = outputs.embeddings.shape[1]
    layer = RegionTextLogits()
    targets = FocalTargets(torch.tensor([0]), torch.tensor([5]), torch.tensor([2]))
    focal_alignment_loss(outputs.embeddings, texts, layer, targets, max_elements=B * k * 5)
    assert [s[-1] for s in widths] == [5] * 7 + [2]  # 37 columns in chunks of 5
    assert all(s[0] * s[1] * s[2] <= B * k * 5 for s in widths)


def test_model_grounding_step_uses_the_chunked_path_and_matches_dense_logits(tiny_model, monkeypatch):
    """The whole model: a grounding step's loss and gradients equal those of dense (B, K, M) logits."""
    spec = InputSpec(kind=DataKind.GROUNDING, size=(96, 64), flip=False, concepts_per_image=5)
    batch = collate_train(
        [det_sample(0, DataKind.GROUNDING), det_sample(1, DataKind.GROUNDING)],
        spec,
        vocabulary=VOCAB,
        rng=np.random.default_rng(0),
    )
    # fp64, so the comparison is not limited by fp32 summation order through the backbone
    tiny_model = tiny_model.double()
    batch = replace(batch, images=batch.images.double())
    monkeypatch.setattr(tiny_model, "loss_chunk_elements", 97)  # many chunks
    tiny_model.zero_grad()
    chunked = tiny_model(batch)["loss"]
    chunked.backward()
    grads = {n: p.grad.clone() for n, p in tiny_model.named_parameters() if p.grad is not None}

    original = tiny_model.head.compute_loss

    def dense(outputs, logits, *args, texts, max_elements, **kwargs):
        return original(outputs, tiny_model.head.logits(outputs.embeddings, texts), *args, **kwargs)

    monkeypatch.setattr(tiny_model.head, "compute_loss", dense)
    tiny_model.zero_grad()
    plain = tiny_model(batch)["loss"]
    plain.backward()
    assert abs(chunked.item() - plain.item()) <= 1e-6 * max(1.0, abs(plain.item()))
    assert "text_encoder.proj.weight" in grads and "head.logits.logit_scale" in grads
    for name, p in tiny_model.named_parameters():
        if p.grad is not None:
            scale = max(1.0, p.grad.abs().max().item())
            assert (grads[name] - p.grad).abs().max().item() <= 1e-9 * scale, name
