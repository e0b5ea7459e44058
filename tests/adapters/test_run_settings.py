"""Every peer number says what produced it: adapter options, processor settings and the transformers version
are in the identity (so in the prediction cache key), in results.json and on the leaderboard row; Grounding
DINO's chunked evaluation is an option whose plan is written beside prompts.json."""

from __future__ import annotations

import json

import pytest

from detclip_bench.adapters import hf_grounding_dino as gd
from detclip_bench.adapters.models import load_detector, parse_model_options
from detclip_bench.errors import DataError
from detclip_bench.mini_world import generate
from detclip_bench.suites import get_suite
from detclip_bench.suites.runner import evaluate_suite
from leaderboards.suite_runs import results_from_run


def test_max_classes_per_chunk_closes_passes():
    counts = [1] * 7
    assert gd.plan_chunks(counts, budget=256, prompts=["a"] * 7) == [range(0, 7)]
    assert gd.plan_chunks(counts, budget=256, prompts=["a"] * 7, max_classes=3) == [
        range(0, 3),
        range(3, 6),
        range(6, 7),
    ]
    assert gd.plan_chunks(counts, budget=8, prompts=["a"] * 7, max_classes=5) == [
        range(0, 3),
        range(3, 6),
        range(6, 7),
    ]  # the token budget still binds first
    with pytest.raises(ValueError, match="at least 1"):
        gd.plan_chunks(counts, budget=256, prompts=["a"] * 7, max_classes=0)


def test_model_options_from_the_command_line(model_dirs):
    source = f"hf:{model_dirs('grounding-dino')}"
    det = load_detector(source, options=parse_model_options(["max_classes_per_chunk=2", "token_reduce=mean"]))
    assert det.options.max_classes_per_chunk == 2 and det.options.token_reduce == "mean"
    assert det.identity() != load_detector(source).identity()  # a different plan is a different cache key
    with pytest.raises(DataError, match=r"unknown option for GroundingDinoOptions; known: .*max_classes_per_chunk"):
        load_detector(source, options={"chunk": "2"})
    with pytest.raises(DataError, match="is not a"):
        load_detector(source, options={"max_classes_per_chunk": "forty"})
    with pytest.raises(DataError, match="expected KEY=VALUE"):
        parse_model_options(["max_classes_per_chunk"])


def test_processor_settings_and_transformers_version_are_in_the_identity(model_dirs, monkeypatch):
    import transformers

    det = load_detector(f"hf:{model_dirs('owlv2')}")
    before = det.identity()
    settings = det.settings()
    assert settings["transformers"] == transformers.__version__
    assert "image_mean" in settings["processor"]["image_processor"]
    monkeypatch.setattr(transformers, "__version__", "99.0.0")
    det._identity = None
    upgraded = det.identity()
    assert upgraded != before  # an upgrade never reuses stale predictions
    monkeypatch.undo()
    det._identity = None
    det.processor.image_processor.size = {"height": 48, "width": 48}
    assert det.identity() not in (before, upgraded)


def test_chunk_plan_and_settings_reach_the_results_and_the_leaderboard(model_dirs, tmp_path):
    root = tmp_path / "world"
    generate(root, scale=0.02, seed=0, progress=False)
    suite = get_suite("mini-odinw13")
    suite = type(suite)(**{**suite.__dict__, "members": suite.members[:2]})
    det = load_detector(f"hf:{model_dirs('grounding-dino')}", options={"max_classes_per_chunk": "2"})
    out = tmp_path / "run"
    evaluate_suite(det, suite, root, out_dir=out, progress=False)
    prompts = json.loads((out / "prompts.json").read_text())
    plans = json.loads((out / "prompt_plan.json").read_text())
    assert set(plans) == set(prompts)
    for member, plan in plans.items():
        assert [p["classes"] for p in plan] == [
            min(2, len(prompts[member]) - 2 * i) for i in range((len(prompts[member]) + 1) // 2)
        ]
        assert sum(p["classes"] for p in plan) == len(prompts[member])
    results = json.loads((out / "results.json").read_text())
    adapter = results["model_provenance"]["adapter"]
    assert adapter["max_classes_per_chunk"] == 2 and adapter["adapter"] == "GroundingDinoDetector"
    info = json.loads((out / "run_info.json").read_text())
    assert info["versions"]["transformers"] and info["versions"]["torch"] and info["device"] == "cpu"
    (row,) = results_from_run(out, "GDINO-tiny")
    assert row.settings["max_classes_per_chunk"] == "2" and "processor" not in row.settings
    assert "max_classes_per_chunk=2" in row.to_entry("-").protocol_stated
