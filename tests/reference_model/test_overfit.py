"""A tiny model must overfit one batch of each data kind: the loss falls by a stated factor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detclip_bench.schema import DataKind
from reference_model.detclipv2 import DetCLIPv2, InputSpec, collate_train
from reference_model.detclipv2.noun_phrases import NounPhraseExtractor

from .conftest import VOCAB, caption_sample, det_sample, tiny_config

STEPS = 40
# (kind, batch builder, required factor loss_first / loss_last after STEPS Adam steps)
CASES = [
    (DataKind.DETECTION, lambda: [det_sample(i) for i in range(2)], 5.0),
    (DataKind.GROUNDING, lambda: [det_sample(i, DataKind.GROUNDING) for i in range(2)], 10.0),
    (DataKind.IMAGE_TEXT, lambda: [caption_sample(i) for i in range(4)], 2.0),
    (DataKind.CLASSIFICATION, lambda: [caption_sample(i, DataKind.CLASSIFICATION) for i in range(4)], 2.0),
]


@pytest.mark.parametrize(("kind", "build", "factor"), CASES, ids=[c[0].value for c in CASES])
def test_tiny_model_overfits_one_batch(kind, build, factor):
    torch.manual_seed(0)
    model = DetCLIPv2(tiny_config())
    spec = InputSpec(
        kind=kind,
        size=(96, 64) if kind in (DataKind.DETECTION, DataKind.GROUNDING) else (96, 96),
        flip=False,
        concepts_per_image=6,
    )
    batch = collate_train(
        build(), spec, vocabulary=VOCAB, rng=np.random.default_rng(0), noun_phrases=NounPhraseExtractor("")
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    history = []
    for _ in range(STEPS):
        losses = model(batch)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        history.append(losses["loss"].item())
    assert np.isfinite(history).all()
    assert history[0] / min(history[-3:]) >= factor, history
