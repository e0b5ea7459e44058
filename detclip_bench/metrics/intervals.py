"""Intervals built from bootstrap replicates: suite averages, and differences pooled over training seeds.

:mod:`detclip_bench.metrics.bootstrap` turns one evaluation into replicate values of every key (one value per
image resample). Two things need more than one evaluation:

* **a suite average** (ODinW13's Avg over datasets): each member is resampled within itself, with its own
  draws, and replicate ``r`` of the average is the mean of the members' replicate ``r``
  (:func:`member_mean`);
* **a difference between arms that each hold several training seeds** (:func:`pooled_delta`): replicate
  ``r`` draws the seeds of each arm with replacement and applies image resample ``r``, shared by every run
  (they were scored on the same images), so the interval carries both sources of spread. With one run per
  arm it is the paired image bootstrap; with seeds that pair up (the same training seed in both arms) the
  seeds are drawn together.

Replicates where a key is undefined in some run (-1: a group left without GT) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detclip_bench.metrics.protocols import DEFAULT_TOPK_PER_CATEGORY, canonical_protocol

__all__ = ["bootstrap_pool", "member_mean", "percentile_interval", "pooled_delta", "seed_offset"]


def bootstrap_pool(protocol: str, topk_per_category: int | None) -> int | None:
    """Detections per category a Fixed-AP evaluator must hold for a bootstrap (2K: dropping images moves
    detections behind the K-th into the top K); None for the protocols that have no per-category cut."""
    if canonical_protocol(protocol) != "lvis-fixed":
        return None
    return 2 * (DEFAULT_TOPK_PER_CATEGORY if topk_per_category is None else topk_per_category)


def seed_offset(seed: int, member_index: int) -> int:
    """The bootstrap seed of a suite's ``member_index``-th member: members are resampled independently, and
    two runs of one suite draw the same resamples for the same member (what makes a comparison paired)."""
    return seed + member_index


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[list[float], float, float]:
    """(percentile interval, standard error, share of values <= 0) of replicate values."""
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(values, [alpha, 100 - alpha])
    se = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return [float(lo), float(hi)], se, float(np.mean(values <= 0))


def _valid_columns(*tables: np.ndarray) -> np.ndarray:
    return np.logical_and.reduce([(t > -1).all(axis=0) for t in tables])


def member_mean(replicates: Sequence[np.ndarray], *, confidence: float = 0.95) -> dict | None:
    """Interval of the unweighted mean over members from each member's replicates (``(R,)`` each, drawn
    independently per member, see :func:`seed_offset`). None where no replicate defines every member."""
    table = np.stack([np.asarray(r, np.float64) for r in replicates])
    ok = _valid_columns(table)
    if not ok.any():
        return None
    means = table[:, ok].mean(axis=0)
    interval, se, _ = percentile_interval(means, confidence)
    return {"interval": interval, "se": se, "n_replicates": int(ok.sum()), "confidence": confidence}


def pooled_delta(
    replicates_a: np.ndarray,
    replicates_b: np.ndarray,
    points_a: Sequence[float],
    points_b: Sequence[float],
    *,
    paired_seeds: bool = False,
    seed: int = 1,
    confidence: float = 0.95,
) -> dict | None:
    """Δ = mean(B) − mean(A) over the runs of each arm, with a seeds × images bootstrap interval.

    ``replicates_a``: ``(runs of A, R)``, row ``i`` run ``i``'s replicate values under image resamples that
    are the same rows for every run (one bootstrap seed); ``points_*`` the runs' own values. ``paired_seeds``:
    run ``i`` of A and run ``i`` of B share a training seed, so a replicate draws seed indices once for both.
    ``seed`` drives the seed draws (the image draws are already in the replicates).

    Returns ``{"delta", "interval", "se", "share_le_0", "n_replicates", "point_a", "point_b", "seed_sd",
    "image_se", "dominant"}``: ``seed_sd`` is how much one seed's Δ moves between training seeds (None with one
    run per arm), ``image_se`` how much it moves between image resamples, ``dominant`` the larger one.
    None where no replicate defines every run.
    """
    A = np.atleast_2d(np.asarray(replicates_a, np.float64))
    B = np.atleast_2d(np.asarray(replicates_b, np.float64))
    pa, pb = np.asarray(points_a, np.float64), np.asarray(points_b, np.float64)
    if A.shape[1] != B.shape[1] or len(pa) != len(A) or len(pb) != len(B):
        raise ValueError(f"replicate tables {A.shape} / {B.shape} do not match points {len(pa)} / {len(pb)}")
    if paired_seeds and len(A) != len(B):
        raise ValueError(f"paired seeds need as many runs in each arm, got {len(A)} and {len(B)}")
    R = A.shape[1]
    rng = np.random.default_rng(seed)
    cols = np.arange(R)
    if paired_seeds:
        draws = rng.integers(0, len(A), size=(R, len(A)))
        means = (B - A)[draws.T, cols].mean(axis=0)
    else:
        draws_a = rng.integers(0, len(A), size=(R, len(A)))
        draws_b = rng.integers(0, len(B), size=(R, len(B)))
        means = B[draws_b.T, cols].mean(axis=0) - A[draws_a.T, cols].mean(axis=0)
    ok = _valid_columns(A, B)
    if not ok.any():
        return None
    interval, se, share = percentile_interval(means[ok], confidence)
    if paired_seeds:
        pairs = [(i, i) for i in range(len(A))]
        per_seed = pb - pa
    else:
        pairs = [(i, j) for i in range(len(A)) for j in range(len(B))]
        per_seed = np.array([pb[j] - pa[i] for i, j in pairs])
    image_se = float(np.mean([np.std(B[j, ok] - A[i, ok], ddof=1) if ok.sum() > 1 else 0.0 for i, j in pairs]))
    seed_sd = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None
    return {
        "delta": float(pb.mean() - pa.mean()),
        "interval": interval,
        "se": se,
        "share_le_0": share,
        "n_replicates": int(ok.sum()),
        "confidence": confidence,
        "point_a": float(pa.mean()),
        "point_b": float(pb.mean()),
        "seed_sd": seed_sd,
        "image_se": image_se,
        "dominant": None if seed_sd is None else ("seeds" if seed_sd > image_se else "images"),
    }
