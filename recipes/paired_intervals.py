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

from detclip_bench.io import read_json
from detclip_bench.metrics.bootstrap import BootstrapState, paired_bootstrap
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.metrics.protocols import make_evaluator
from detclip_bench.suites import get_suite
from detclip_bench.suites.predict import PredictionArrays
from detclip_bench.suites.runner import predictions_path

__all__ = ["REPLICATES", "concept_groups", "paired_intervals"]

REPLICATES = 1000
BOOTSTRAP_SEED = 0
PROTOCOL = "lvis-fixed"
#: report column -> bootstrap key (mini-world concept groups become named category groups)
KEYS = {"AP": "AP", "APr": "APr", "APc": "APc", "APf": "APf"}


def concept_groups(root: Path) -> dict[str, str]:
    """A mini world's LVIS-style category name (``_`` for spaces) -> its concept group; {} for other data."""
    vocab = Path(root) / "vocabulary.json"
    if not vocab.is_file():
        return {}
    return {c["name"].replace(" ", "_"): c["group"] for c in read_json(vocab).get("concepts", [])}


def _groups(root: Path, gt: GroundTruth) -> dict[str, list[int]]:
    """Mini-world concept group -> the suite's category ids."""
    group = concept_groups(root)
    out: dict[str, list[int]] = {}
    for cid, name in gt.category_names.items():
        if name in group:
            out.setdefault(group[name], []).append(int(cid))
    return out


def _state(out: Path, run: str, suite_name: str, root: Path) -> tuple[BootstrapState, dict[str, list[int]]]:
    suite = get_suite(suite_name)
    (target,) = suite.targets(root)
    arrays, _ = PredictionArrays.load(predictions_path(out / "eval" / f"{run}-zero-shot-{suite_name}", target))
    gt = GroundTruth.cached(target.annotations, lvis=True)
    budget = suite.evaluator_budget(PROTOCOL)
    ev = make_evaluator(gt, PROTOCOL, **budget, pool_per_category=2 * budget["topk_per_category"])
    ev.update(arrays.image_ids, arrays.boxes, arrays.scores, arrays.category_ids)
    return BootstrapState(ev), _groups(root, gt)


def _column(key: str) -> str:
    return f"group:{key[3:-1]}" if key.startswith("AP[") else key


def paired_intervals(report: dict[str, Any], out: Path, root: Path, *, n_replicates: int = REPLICATES) -> dict:
    """``{suite: {"per_seed": {seed: {column: {...}}}, "mean": {column: {...}}}}`` for a report whose runs carry
    ``arm`` and ``seed``; columns as in the paired table (AP, APr, APc, APf, group:<name>)."""
    runs: dict[tuple[str, int], str] = {}
    suites: set[str] = set()
    for run in report["runs"]:
        if run.get("arm"):
            runs[(run["arm"], run["seed"])] = run["run"]
            suites.update(k.removeprefix("zero-shot ") for k in run if k.startswith("zero-shot "))
    arms = list(dict.fromkeys(arm for arm, _ in runs))
    if len(arms) != 2:
        return {}
    control, treatment = arms
    seeds = sorted(s for (a, s) in runs if a == control and (treatment, s) in runs)
    result: dict[str, Any] = {}
    for suite_name in sorted(suites):
        per_seed, reps = {}, {}
        for seed in seeds:
            a, groups = _state(out, runs[(control, seed)], suite_name, root)
            b, _ = _state(out, runs[(treatment, seed)], suite_name, root)
            paired = paired_bootstrap(
                a, b, n_replicates=n_replicates, seed=BOOTSTRAP_SEED, groups=groups, return_replicates=True
            )
            keys = [k for k in paired if k in KEYS or k.startswith("AP[")]
            per_seed[str(seed)] = {
                _column(k): {f: paired[k][f] for f in ("delta", "interval", "se", "share_le_0")} for k in keys
            }
            reps[seed] = {_column(k): paired[k]["replicates"] for k in keys}
        result[suite_name] = {
            "protocol": PROTOCOL,
            "replicates": n_replicates,
            "bootstrap_seed": BOOTSTRAP_SEED,
            "per_seed": per_seed,
            "mean": _two_level(per_seed, reps, n_replicates) if len(seeds) > 1 else {},
        }
    return result


def _two_level(per_seed: dict, reps: dict, n_replicates: int) -> dict:
    """Seeds drawn with replacement × one shared image resample per replicate, for the mean Δ over seeds."""
    rng = np.random.default_rng(BOOTSTRAP_SEED + 1)
    seeds = sorted(reps)
    draws = rng.integers(0, len(seeds), size=(n_replicates, len(seeds)))
    out = {}
    for column in next(iter(reps.values())):
        rows = [reps[s][column] for s in seeds]
        if any(len(r) != n_replicates for r in rows):  # a replicate left a group without GT: no pooled interval
            continue
        table = np.stack(rows)  # (seeds, replicates)
        means = table[draws.T, np.arange(n_replicates)].mean(axis=0)
        deltas = [per_seed[str(s)][column]["delta"] for s in seeds]
        lo, hi = np.percentile(means, [2.5, 97.5])
        seed_sd = float(np.std(deltas, ddof=1))
        image_se = float(np.mean([per_seed[str(s)][column]["se"] for s in seeds]))
        out[column] = {
            "delta": float(np.mean(deltas)),
            "interval": [float(lo), float(hi)],
            "share_le_0": float(np.mean(means <= 0)),
            "seed_sd": seed_sd,
            "image_se": image_se,
            "dominant": "seeds" if seed_sd > image_se else "images",
        }
    return out
