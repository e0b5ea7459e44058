"""Every transformers adapter through the real ``mini-odinw13`` suite on a generated mini world.

The tiny random models score ~0 AP, so this checks the plumbing, not accuracy: every member is
predicted and scored, the cached predictions are well-formed against each member's GT json
(image ids, category ids, boxes inside the image, scores in [0, 1]) and results.json carries a
finite Avg that is the mean of its members.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from detclip_bench.mini_world import generate
from detclip_bench.predict.arrays import PredictionArrays
from detclip_bench.suites import get_suite
from detclip_bench.suites.predictions import cache_path
from detclip_bench.suites.runner import evaluate_suite
from tests.adapters.conftest import BUILDERS

SUITE = "mini-odinw13"


@pytest.fixture(scope="module")
def mini_world(tmp_path_factory):
    """The smallest mini world (1–2 val images per ODinW member, ~1 s)."""
    root = tmp_path_factory.mktemp("adapters_mini_world")
    generate(root, scale=0.02, seed=0, progress=False)
    return root


def _check_predictions(arrays: PredictionArrays, gt: dict, max_dets: int) -> None:
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    assert len(arrays) > 0
    assert set(arrays.image_ids.tolist()) == set(sizes)  # every GT image got detections
    assert set(arrays.category_ids.tolist()) <= {c["id"] for c in gt["categories"]}
    assert np.isfinite(arrays.scores).all() and ((arrays.scores >= 0) & (arrays.scores <= 1)).all()
    assert np.isfinite(arrays.boxes).all()
    assert (arrays.boxes[:, 2] >= arrays.boxes[:, 0]).all() and (arrays.boxes[:, 3] >= arrays.boxes[:, 1]).all()
    wh = np.array([sizes[i] for i in arrays.image_ids.tolist()], dtype=np.float32)
    assert (arrays.boxes >= 0).all()
    assert (arrays.boxes[:, [0, 2]] <= wh[:, :1]).all() and (arrays.boxes[:, [1, 3]] <= wh[:, 1:]).all()
    _, per_image = np.unique(arrays.image_ids, return_counts=True)
    assert per_image.max() <= max_dets


@pytest.mark.parametrize("model_type", sorted(BUILDERS))
def test_adapter_runs_the_mini_odinw13_suite(model_type, detectors, mini_world, tmp_path):
    det = detectors(model_type)  # load_detector("hf:<saved tiny model dir>")
    suite = get_suite(SUITE)
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = evaluate_suite(det, suite, mini_world, out_dir=out, cache_dir=cache, batch_size=2, progress=False)

    written = json.loads((out / "results.json").read_text())
    members = [m.name for m in suite.members]
    assert list(written["members"]) == members and written["model"] == det.name
    assert written["model_identity"] == det.identity()
    aps = [written["members"][m]["coco"]["metrics"]["AP"] for m in members]
    assert all(math.isfinite(ap) and 0.0 <= ap <= 1.0 for ap in aps)
    avg = written["aggregate"]["metrics"]["AP"]
    assert math.isfinite(avg) and avg == pytest.approx(sum(aps) / len(aps))
    assert result.aggregate()["AP"] == pytest.approx(avg)

    prompts = json.loads((out / "prompts.json").read_text())
    for target in suite.targets(mini_world):
        gt = json.loads(target.annotations.read_text())
        # verbatim ODinW prompts: one per GT category, in category order
        assert len(prompts[target.member]) == len(gt["categories"])
        arrays, meta = PredictionArrays.load(cache_path(cache, det.identity(), suite, target))
        assert meta["model"] == det.name
        _check_predictions(arrays, gt, suite.max_dets_per_image)
