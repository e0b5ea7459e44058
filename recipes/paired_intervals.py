"""Intervals for a paired ablation: image-bootstrap Δ per training seed, and seeds × images for the mean.

Each zero-shot evaluation of the mini reproduction keeps its predictions (``OUT/eval/<run>-zero-shot-<suite>/
predictions/``). For every training seed the two arms were scored on the same images, so
:func:`detclip_bench.metrics.bootstrap.paired_bootstrap` resamples those images once and applies the same
resamples to both arms: Δ (treatment − control) with a 95 % percentile interval and the share of replicates
with Δ ≤ 0. For the mean Δ over seeds a two-level bootstrap draws, per replicate, the seeds with replacement
and one image resample shared by all of them, so its interval carries both sources; the report also states
which one dominates (the sd of the per-seed Δ against the mean image-bootstrap standard error).
All the image resamples use bootstrap seed 0 (recorded), so the intervals are deterministic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from detclip_bench.metrics.bootstrap import BootstrapState, bootstrap_ap
from detclip_bench.metrics.factory import make_evaluator
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.metrics.intervals import bootstrap_pool, pooled_delta
from detclip_bench.mini_world.vocabulary import category_groups, concept_groups
from detclip_bench.predict.arrays import PredictionArrays
from detclip_bench.suites import get_suite
from detclip_bench.suites.runner import predictions_path
from recipes.report import ReproductionReport

__all__ = ["REPLICATES", "concept_groups", "paired_intervals"]

REPLICATES = 1000
BOOTSTRAP_SEED = 0
PROTOCOL = "lvis-fixed"
#: report column -> bootstrap key (mini-world concept groups become named category groups)
KEYS = {"AP": "AP", "APr": "APr", "APc": "APc", "APf": "APf"}


def _state(out: Path, run: str, suite_name: str, root: Path) -> tuple[BootstrapState, dict[str, list[int]]]:
    suite = get_suite(suite_name)
    (target,) = suite.targets(root)
    arrays, _ = PredictionArrays.load(predictions_path(out / "eval" / f"{run}-zero-shot-{suite_name}", target))
    gt = GroundTruth.cached(target.annotations, lvis=True)
    budget = suite.evaluator_budget(PROTOCOL)
    ev = make_evaluator(gt, PROTOCOL, **budget, pool_per_category=bootstrap_pool(PROTOCOL, budget["topk_per_category"]))
    ev.update(arrays.image_ids, arrays.boxes, arrays.scores, arrays.category_ids)
    return BootstrapState(ev), category_groups(root, gt.category_names)


def _column(key: str) -> str:
    return f"group:{key[3:-1]}" if key.startswith("AP[") else key


def paired_intervals(report: ReproductionReport, out: Path, root: Path, *, n_replicates: int = REPLICATES) -> dict:
    """``{suite: {"per_seed": {seed: {column: {...}}}, "mean": {column: {...}}}}`` for a report whose runs carry
    ``arm`` and ``seed``; columns as in the paired table (AP, APr, APc, APf, group:<name>)."""
    runs: dict[tuple[str, int], str] = {}
    suites: set[str] = set()
    for run in report.runs:
        if run.arm:
            runs[(run.arm, run.seed)] = run.run
            suites.update(e.suite for e in run.zero_shot())
    arms = list(dict.fromkeys(arm for arm, _ in runs))
    if len(arms) != 2:
        return {}
    control, treatment = arms
    seeds = sorted(s for (a, s) in runs if a == control and (treatment, s) in runs)
    result: dict[str, Any] = {}
    for suite_name in sorted(suites):
        reps: dict[str, list] = {}  # column -> [(control replicates, treatment replicates, points)] per seed
        per_seed = {}
        for seed in seeds:
            a, groups = _state(out, runs[(control, seed)], suite_name, root)
            b, _ = _state(out, runs[(treatment, seed)], suite_name, root)
            boot = [
                bootstrap_ap(s, n_replicates=n_replicates, seed=BOOTSTRAP_SEED, groups=groups, return_replicates=True)
                for s in (a, b)
            ]
            row = {}
            for key in (k for k in boot[0] if k in boot[1] and (k in KEYS or k.startswith("AP["))):
                (ea, eb), column = (boot[0][key], boot[1][key]), _column(key)
                if ea["point"] < 0 or eb["point"] < 0:
                    continue
                one = pooled_delta(ea["replicates"], eb["replicates"], [ea["point"]], [eb["point"]])
                if one is None:
                    continue
                row[column] = {"delta": one["delta"], "interval": one["interval"], "se": one["image_se"]}
                row[column]["share_le_0"] = one["share_le_0"]
                reps.setdefault(column, []).append((ea["replicates"], eb["replicates"], ea["point"], eb["point"]))
            per_seed[str(seed)] = row
        result[suite_name] = {
            "protocol": PROTOCOL,
            "replicates": n_replicates,
            "bootstrap_seed": BOOTSTRAP_SEED,
            "per_seed": per_seed,
            "mean": _two_level(reps, len(seeds)) if len(seeds) > 1 else {},
        }
    return result


def _two_level(reps: dict[str, list], n_seeds: int) -> dict:
    """Seeds drawn with replacement (the same seed in both arms) × one shared image resample per replicate,
    for the mean Δ over seeds (:func:`~detclip_bench.metrics.intervals.pooled_delta`)."""
    out = {}
    for column, rows in reps.items():
        if len(rows) != n_seeds:  # a seed left this column undefined: no pooled interval
            continue
        a, b, pa, pb = (np.stack(x) if i < 2 else list(x) for i, x in enumerate(zip(*rows, strict=True)))
        pooled = pooled_delta(a, b, pa, pb, paired_seeds=True, seed=BOOTSTRAP_SEED + 1)
        if pooled is None or pooled["n_replicates"] != a.shape[1]:  # a replicate left a group without GT
            continue
        out[column] = {k: pooled[k] for k in ("delta", "interval", "share_le_0", "seed_sd", "image_se", "dominant")}
    return out
