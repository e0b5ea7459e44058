"""A score must not depend on the inference batch size: the DetCLIPv2 path pads each image as if alone.

Images of different sizes in one batch used to be padded to the batch's largest, which changes the features
near the borders (Swin windows attend over the padding), so `eval --batch-size 16` and `--batch-size 4` gave
different AP on the same checkpoint. Now a batch only stacks images of the same padded shape.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detclip_bench.suites import get_suite
from detclip_bench.suites.predict import open_target
from detclip_bench.suites.runner import evaluate_suite
from reference_model.detclipv2 import create_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("detclipv2-mini", score_thresh=0.0).eval()


def test_mixed_sizes_get_per_image_padding(model, small_world):
    suite = get_suite("mini-lvis")
    ds = open_target(suite.targets(small_world)[0])
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
    assert metrics[0] == metrics[1] == metrics[2]
