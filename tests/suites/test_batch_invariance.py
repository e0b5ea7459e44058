"""A score must not depend on the inference batch size: the DetCLIPv2 path pads each image as if alone.

Images of different sizes in one batch used to be padded to the batch's largest, which changes the features
near the borders (Swin windows attend over the padding), so `eval --batch-size 16` and `--batch-size 4` gave
different AP on the same checkpoint. Now a batch only stacks images of the same padded shape.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detclip_bench.schema import DataKind
from detclip_bench.suites import get_suite
from detclip_bench.suites.predictions import predict_target
from detclip_bench.suites.runner import evaluate_suite
from reference_model.detclipv2 import InputSpec, collate_train, create_model

# what the head learns on cached features; the backbone, FPN and deformable branch stay as initialised, so
# no step runs them backwards (the deformable conv's backward is most of a full step on CPU)
_TRAINED = ("head.cls_tower", "head.embed", "head.bbox_pred", "head.centerness", "head.scales", "head.logits")
STEPS, LR = 40, 2e-3
MIN_AP = 0.05  # an untrained detclipv2-mini scores ~0.002 here; these 40 steps reach ~0.13


@pytest.fixture(scope="module")
def model(small_world):
    """detclipv2-mini fitted to the mini-lvis eval images (~10 s), so the AP compared below is not zero.

    An untrained model's AP may be 0 at every batch size, which would make the equality below vacuous.
    """
    torch.manual_seed(0)
    model = create_model("detclipv2-mini", score_thresh=0.0)
    ds = get_suite("mini-lvis").targets(small_world)[0].open()
    vocab = ds.vocabulary()
    spec = InputSpec(kind=DataKind.DETECTION, size=model.config.test_size, flip=False, concepts_per_image=len(vocab))
    batch = collate_train([ds[i] for i in range(len(ds))], spec, vocabulary=vocab, rng=np.random.default_rng(0))
    backbone = model.backbone.eval()
    with torch.no_grad():
        feats = backbone(batch.images)
    model.backbone = _Cached(feats)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(_TRAINED))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, weight_decay=0.0)
    model.train()
    for _ in range(STEPS):
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.backbone = backbone
    return model.eval()


class _Cached(torch.nn.Module):
    """Stands in for the frozen backbone during the fit: the batch never changes, so neither do its features."""

    def __init__(self, feats):
        super().__init__()
        self.feats = feats

    def forward(self, images):
        return self.feats


def test_mixed_sizes_get_per_image_padding(model, small_world):
    suite = get_suite("mini-lvis")
    ds = suite.targets(small_world)[0].open()
    images = [ds[i].load_image() for i in range(min(6, len(ds)))]
    assert len({im.size for im in images}) > 1  # the point of the test: mixed sizes
    prompts = ["a red disc", "a blue square", "a green triangle"]
    alone = [model.predict([im], prompts, max_dets_per_image=50)[0] for im in images]
    together = model.predict(images, prompts, max_dets_per_image=50)
    for a, b in zip(alone, together, strict=True):
        assert len(a.scores) == len(b.scores)
        np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-5)
        np.testing.assert_allclose(a.boxes, b.boxes, rtol=0, atol=1e-3)
        assert (a.labels == b.labels).all()


def test_suite_ap_is_identical_for_batch_sizes_1_4_16(model, small_world):
    suite = get_suite("mini-lvis")
    results = [evaluate_suite(model, suite, small_world, batch_size=b, progress=False) for b in (1, 4, 16)]
    metrics = [next(iter(r.members.values()))["lvis-fixed"].metrics for r in results]
    assert metrics[0]["AP"] > MIN_AP  # the model detects, so equal numbers below mean equal detections
    assert metrics[0] == metrics[1] == metrics[2]


def test_predictions_do_not_depend_on_loader_workers(model, small_world):
    """The pipelined loop prepares images in DataLoader workers; the predictions are the in-process ones, bit for
    bit."""
    suite = get_suite("mini-lvis")
    target = suite.targets(small_world)[0]
    runs = [
        predict_target(model, suite, target, cache_dir=None, batch_size=4, workers=w, progress=False)[0] for w in (0, 2)
    ]
    assert len(runs[0]) > 0
    for field in ("image_ids", "boxes", "scores", "category_ids"):
        np.testing.assert_array_equal(getattr(runs[0], field), getattr(runs[1], field))
