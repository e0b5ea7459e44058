"""Every transformers adapter: well-formed, deterministic, batch-invariant predictions and a stable identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detclip_bench.adapters import Detector, Prediction
from detclip_bench.adapters.hf_grounding_dino import GroundingDinoDetector
from detclip_bench.adapters.hf_omdet import OmDetDetector
from detclip_bench.adapters.hf_owl import OwlDetector
from detclip_bench.adapters.models import hf_model_types, load_detector
from tests.adapters.conftest import BUILDERS
from tests.adapters.tiny_models import random_images

PROMPTS = ["a cat", "a remote control", "zebra", "traffic light, a signal"]
SIZES = [(80, 60), (50, 90), (80, 60), (33, 47)]  # (width, height); two share a size
EXPECTED_CLASS = {
    "owlv2": OwlDetector,
    "owlvit": OwlDetector,
    "grounding-dino": GroundingDinoDetector,
    "mm-grounding-dino": GroundingDinoDetector,
    "omdet-turbo": OmDetDetector,
}
ALL = sorted(BUILDERS)


def test_every_registered_hf_type_is_tested():
    assert sorted(hf_model_types()) == ALL == sorted(EXPECTED_CLASS)


@pytest.mark.parametrize("model_type", ALL)
def test_load_detector_picks_adapter_from_config(model_type, detectors, model_dirs):
    det = detectors(model_type)
    assert type(det) is EXPECTED_CLASS[model_type]
    assert isinstance(det, Detector)
    assert det.name == f"hf:{model_dirs(model_type)}"


@pytest.mark.parametrize("model_type", ALL)
def test_predictions_well_formed(model_type, detectors):
    det = detectors(model_type)
    images = random_images(SIZES, seed=1)
    k = 7
    preds = det.predict(images, PROMPTS, max_dets_per_image=k)
    assert len(preds) == len(images)
    for pred, (w, h) in zip(preds, SIZES, strict=True):
        assert isinstance(pred, Prediction)
        n = len(pred.scores)
        if model_type != "omdet-turbo":  # no NMS: there are always >= k (box, class) pairs
            assert n == k
        assert 0 < n <= k
        assert pred.boxes.dtype == np.float32 and pred.labels.dtype == np.int64
        assert np.isfinite(pred.boxes).all()
        assert (pred.boxes[:, [0, 2]] >= 0).all() and (pred.boxes[:, [0, 2]] <= w).all()
        assert (pred.boxes[:, [1, 3]] >= 0).all() and (pred.boxes[:, [1, 3]] <= h).all()
        assert (pred.boxes[:, 2] >= pred.boxes[:, 0]).all() and (pred.boxes[:, 3] >= pred.boxes[:, 1]).all()
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert ((pred.labels >= 0) & (pred.labels < len(PROMPTS))).all()
        assert (np.diff(pred.scores) <= 0).all(), "detections must be sorted best first"


@pytest.mark.parametrize("model_type", ALL)
def test_deterministic_and_batch_invariant(model_type, detectors):
    det = detectors(model_type)
    images = random_images(SIZES, seed=2)
    batched = det.predict(images, PROMPTS, max_dets_per_image=10)
    again = det.predict(images, PROMPTS, max_dets_per_image=10)
    single = [det.predict([im], PROMPTS, max_dets_per_image=10)[0] for im in images]
    for a, b, s in zip(batched, again, single, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.labels, b.labels)
        # batched GEMMs may differ from single ones in the last float bits, nothing more
        np.testing.assert_allclose(a.scores, s.scores, rtol=0, atol=1e-5)
        np.testing.assert_allclose(a.boxes, s.boxes, rtol=0, atol=1e-3)
        np.testing.assert_array_equal(a.labels, s.labels)


@pytest.mark.parametrize("model_type", ALL)
def test_top_k_is_a_prefix_of_a_larger_k(model_type, detectors):
    det = detectors(model_type)
    images = random_images(SIZES[:1], seed=3)
    small = det.predict(images, PROMPTS, max_dets_per_image=3)[0]
    large = det.predict(images, PROMPTS, max_dets_per_image=20)[0]
    np.testing.assert_array_equal(small.scores, large.scores[:3])
    np.testing.assert_array_equal(small.labels, large.labels[:3])


@pytest.mark.parametrize("model_type", ["owlv2", "grounding-dino", "omdet-turbo"])
def test_identity_stable_across_reload_and_sensitive_to_weights(model_type, detectors, model_dirs):
    det = detectors(model_type)
    reloaded = load_detector(f"hf:{model_dirs(model_type)}")
    assert det.identity() == reloaded.identity()
    assert len(det.identity()) == 64
    with torch.no_grad():
        next(reloaded.model.parameters()).view(-1)[0] += 1e-3
    reloaded._identity = None
    assert reloaded.identity() != det.identity()


def test_identity_includes_adapter_settings(model_dirs):
    from detclip_bench.adapters import hf_grounding_dino

    source = str(model_dirs("grounding-dino"))
    default = hf_grounding_dino.GroundingDinoDetector.load(source)
    small = hf_grounding_dino.GroundingDinoDetector.load(source, hf_grounding_dino.GroundingDinoOptions(token_budget=8))
    assert default.identity() != small.identity()


@pytest.mark.parametrize("model_type", ["owlv2", "grounding-dino"])
def test_grayscale_and_empty_prompt_handling(model_type, detectors):
    det = detectors(model_type)
    gray = random_images([(40, 30)], seed=4)[0].convert("L")
    (pred,) = det.predict([gray], PROMPTS[:2], max_dets_per_image=5)
    assert len(pred.scores) == 5
    with pytest.raises(ValueError, match="at least one prompt"):
        det.predict([gray], [])
    with pytest.raises(ValueError, match="empty prompt"):
        det.predict([gray], ["cat", "  "])
