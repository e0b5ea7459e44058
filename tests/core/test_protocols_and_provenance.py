"""One protocol vocabulary (names, aliases, the evaluator factory) and one provenance helper set."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import typing
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from detclip_bench import provenance
from detclip_bench.adapters import hf_common
from detclip_bench.metrics import CocoEvaluator, LvisEvaluator
from detclip_bench.metrics.factory import make_evaluator
from detclip_bench.metrics.protocols import (
    ALIASES,
    CLI_CHOICES,
    COMPUTED_PROTOCOLS,
    PAPER_ONLY,
    PROTOCOLS,
    ComputedProtocol,
    Protocol,
    canonical_protocol,
)
from detclip_bench.metrics.synthetic import make_coco_like, make_detections, make_lvis_like
from detclip_bench.predict.arrays import PredictionArrays
from detclip_bench.suites import SUITES, get_suite
from detclip_bench.suites.runner import run_info, score_target
from detclip_bench.suites.suite import EvalTarget

DATA = Path(__file__).resolve().parents[2] / "leaderboards" / "data"


# ----------------------------------------------------------------------------- vocabulary


def test_literal_types_match_the_vocabulary():
    assert set(typing.get_args(Protocol)) == set(PROTOCOLS)
    assert set(typing.get_args(ComputedProtocol)) == set(COMPUTED_PROTOCOLS) == set(PROTOCOLS) - PAPER_ONLY
    assert set(PAPER_ONLY) == {"lvis-ar"}
    assert "not computed" in PROTOCOLS["lvis-ar"]


def test_every_suite_protocol_is_computed():
    for name in SUITES.names():
        suite = SUITES.get(name)
        assert suite.metrics and set(suite.metrics) <= set(COMPUTED_PROTOCOLS), name


def test_every_leaderboard_protocol_is_in_the_vocabulary():
    files = sorted(DATA.glob("*.json"))
    assert files
    seen = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("protocol"), str):
                seen.add(node["protocol"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in files:
        walk(json.loads(path.read_text()))
    assert seen and seen <= set(PROTOCOLS)
    assert "lvis-ar" in seen  # paper-only, still a name the leaderboards may carry


def test_leaderboards_use_the_same_vocabulary():
    from leaderboards import render, schema

    assert schema.PROTOCOLS is PROTOCOLS and render.PROTOCOLS is PROTOCOLS
    assert schema.Protocol is Protocol


def test_aliases_and_unknown_names():
    assert canonical_protocol("lvis") == "lvis-standard"
    for name in PROTOCOLS:
        assert canonical_protocol(name) == name
    assert set(ALIASES.values()) <= set(PROTOCOLS)
    assert set(CLI_CHOICES) == set(COMPUTED_PROTOCOLS) | set(ALIASES)
    with pytest.raises(ValueError, match=r"unknown protocol 'lvis-fxed'.*lvis-fixed"):
        canonical_protocol("lvis-fxed")
    with pytest.raises(ValueError, match="unknown protocol"):
        make_evaluator(make_coco_like(2, 2), "map")


def test_make_evaluator_budgets():
    gt = make_lvis_like(4, 5, gt_per_image=2, seed=1)
    assert isinstance(make_evaluator(make_coco_like(2, 2), "coco"), CocoEvaluator)
    std = make_evaluator(gt, "lvis")
    assert (std.protocol, std.max_dets_per_image) == ("standard", 300)
    fixed = make_evaluator(gt, "lvis-fixed")
    assert (fixed.protocol, fixed.topk_per_category) == ("fixed", 10000)
    with pytest.raises(ValueError, match="no per-image cap"):
        make_evaluator(gt, "lvis-fixed", max_dets_per_image=300)
    with pytest.raises(ValueError, match="lvis-fixed only"):
        make_evaluator(gt, "lvis-standard", topk_per_category=50)
    with pytest.raises(ValueError, match="paper-only"):
        make_evaluator(gt, "lvis-ar")


@pytest.mark.filterwarnings("ignore:.*fewer than K=")
@pytest.mark.parametrize("topk", [None, 40])
def test_suite_scoring_equals_the_evaluators_it_used_before(tmp_path, topk):
    """score_target through make_evaluator gives byte-identical results to the evaluators it built by hand."""
    gt = make_lvis_like(30, 20, gt_per_image=6, seed=11)
    dets = make_detections(gt, 320, seed=12)  # > 300 per image: the standard cap bites
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    suite = get_suite("mini-lvis-val")
    assert set(suite.metrics) == {"lvis-fixed", "lvis-standard"} and suite.max_dets_per_image == 300
    if topk is not None:
        suite = dataclasses.replace(suite, topk_per_category=topk)  # K bites too
    arrays = PredictionArrays(
        dets.image_ids, dets.boxes_xyxy.astype(np.float32), dets.scores.astype(np.float32), dets.category_ids
    )
    target = EvalTarget("lvis-val", "val", path, tmp_path, "lvis")
    got = score_target(suite, target, arrays)
    for protocol in suite.metrics:
        # what runner.score_target built before the factory: the suite's cap passed to Fixed AP too
        before = LvisEvaluator(
            gt,
            protocol=protocol.removeprefix("lvis-"),
            topk_per_category=suite.topk_per_category,
            max_dets_per_image=suite.max_dets_per_image,
        )
        before.update(arrays.image_ids, arrays.boxes, arrays.scores, arrays.category_ids)
        assert got[protocol].to_json() == before.compute().to_json(), protocol
    assert (
        got["lvis-fixed"].max_dets_per_image is None and got["lvis-fixed"].topk_per_category == suite.topk_per_category
    )


# ----------------------------------------------------------------------------- provenance


def _state() -> OrderedDict:
    torch.manual_seed(0)
    return OrderedDict(
        [
            ("a.weight", torch.randn(3, 4)),
            ("b.bias", torch.arange(5, dtype=torch.int64)),
            ("c.half", torch.randn(2, dtype=torch.bfloat16)),
        ]
    )


def test_weights_fingerprint_sensitive_to_one_byte_and_not_to_order():
    state, config = _state(), {"width": 4}
    digest = provenance.weights_fingerprint(state, config)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert provenance.weights_fingerprint(OrderedDict(reversed(state.items())), config) == digest
    assert provenance.weights_fingerprint(state, {"width": 4}, {}) == digest
    flipped = OrderedDict((k, v.clone()) for k, v in state.items())
    flipped["a.weight"].view(torch.uint8)[0] ^= 1  # one bit of one byte
    assert provenance.weights_fingerprint(flipped, config) != digest
    assert provenance.weights_fingerprint(state, {"width": 5}) != digest
    assert provenance.weights_fingerprint(state, config, {"adapter": "x"}) != digest
    recast = OrderedDict(state)
    recast["b.bias"] = state["b.bias"].to(torch.float64)
    assert provenance.weights_fingerprint(recast, config) != digest  # dtype is part of it


class _Config:
    def to_dict(self) -> dict:
        return {"width": 4}


class _TinyHF(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        self.config = _Config()


def test_hf_identity_is_the_weights_fingerprint(monkeypatch):
    torch.manual_seed(0)
    det = hf_common.HFDetector(_TinyHF(), processor=None, source="tiny")
    want = provenance.weights_fingerprint(det.model.state_dict(), {"width": 4}, det.settings())
    assert det.identity() == want
    monkeypatch.setattr(hf_common, "weights_fingerprint", lambda *a, **k: "f" * 64)
    det._identity = None
    assert det.identity() == "f" * 64


def test_detclipv2_identity_is_the_weights_fingerprint(monkeypatch):
    from reference_model.detclipv2 import DetCLIPv2
    from reference_model.detclipv2 import model as model_module
    from tests.reference_model.conftest import tiny_config

    torch.manual_seed(0)
    model = DetCLIPv2(tiny_config())
    assert model.identity() == provenance.weights_fingerprint(model.state_dict(), model.config.to_dict())[:16]
    calls = []

    def fake(state, config, extra=None):
        calls.append(len(state))
        return "0123456789abcdef" * 4

    monkeypatch.setattr(model_module, "weights_fingerprint", fake)
    with torch.no_grad():
        model.head.logits.bias.add_(0.5)  # a changed tensor: the cached digest is stale
    assert model.identity() == "0123456789abcdef" and len(calls) == 1
    assert model.identity() == "0123456789abcdef" and len(calls) == 1  # cached while no tensor changes


def test_git_hash_and_versions_and_run_info(tmp_path, monkeypatch):
    head = provenance.git_hash()
    inside = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=Path(provenance.__file__).parent, capture_output=True, text=True, check=False
    )
    expected = inside.stdout.strip() if inside.returncode == 0 else ""
    assert head == (expected or None)
    versions = provenance.library_versions()
    assert set(versions) == set(provenance.LIBRARIES)
    assert versions["numpy"] == np.__version__ and versions["detclip-bench"]
    info = run_info()
    assert info["versions"] == versions and info["device"] == provenance.device_description()
    assert info["git_hash"] == head

    def no_git(*a, **k):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    assert provenance.git_hash() is None

    from leaderboards.results import _git_hash_or_unknown

    assert _git_hash_or_unknown() == "unknown"
