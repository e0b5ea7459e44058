"""LVIS images at M = 150: the fill with unverified categories changes the prompts, never the loss.

Appendix Table 2 gives every LVIS image M = 150 concepts. The federated rule (docs/distributed_and_losses.md
§2d) lets only positives and verified-absent categories push anchors down, so the categories that fill an
image up to M are masked for that image: with the same start, the loss and every gradient are those of
the verified-only batch (to fp32 summation order). The fill matters only where the mask is off.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from detclip_bench.schema import DataKind
from reference_model.detclipv2 import InputSpec, collate_train
from tests.reference_model.conftest import VOCAB, det_sample

VOCAB_IDS = tuple(replace(c, category_id=i + 1) for i, c in enumerate(VOCAB))


def _lvis(i: int, neg: list[int]):
    s = det_sample(i)
    by_name = {c.name: c for c in VOCAB_IDS}
    concepts = tuple(by_name[c.name] for c in s.concepts)
    return replace(s, concepts=concepts, meta={"neg_category_ids": neg, "not_exhaustive_category_ids": []})


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model(batch)["loss_align"]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_filling_lvis_images_to_m_leaves_the_loss_and_gradients_unchanged(tiny_model):
    samples = [_lvis(0, [5]), _lvis(1, [6, 7])]
    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64), flip=False, concepts_per_image=7)
    verified = collate_train(
        samples, replace(spec, federated_fill=False), vocabulary=VOCAB_IDS, rng=np.random.default_rng(0)
    )
    filled = collate_train(samples, spec, vocabulary=VOCAB_IDS, rng=np.random.default_rng(0))
    assert len(filled.concepts) > len(verified.concepts)  # more prompts in the batch ...
    assert filled.concepts_per_image == [7, 7]
    torch.testing.assert_close(filled.images, verified.images)
    tiny_model.double()
    a_loss, a_grads = _loss_and_grads(tiny_model, replace(verified, images=verified.images.double()))
    b_loss, b_grads = _loss_and_grads(tiny_model, replace(filled, images=filled.images.double()))
    assert a_loss.item() > 0
    torch.testing.assert_close(b_loss, a_loss, rtol=1e-9, atol=0)  # ... and the same loss
    for name, grad in a_grads.items():
        scale = max(1.0, grad.abs().max().item())
        assert (b_grads.get(name, torch.zeros_like(grad)) - grad).abs().max().item() <= 1e-9 * scale, name
