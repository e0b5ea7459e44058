"""Compare evaluation runs of one suite: ΔAP per metric and member with paired bootstrap intervals.

Each arm is one run folder (what ``eval``, ``finetune`` or ``reproduce`` wrote) or several of them, one per
training seed. Every run is re-scored from its own ``predictions/`` (no model runs), each member is resampled
with the same image draws in every run (seed ``S + member index``, as ``eval`` draws them), and each arm is
compared with the first:

* one run per arm: the paired image bootstrap — Δ with a percentile interval and the share of replicates
  where the arm does not beat the baseline;
* several runs per arm: seeds × images (:func:`~detclip_bench.metrics.intervals.pooled_delta`), with the
  spread of one seed's Δ between seeds against its spread between image resamples, so the table says which
  source dominates;
* suites that average members (ODinW13): the average's Δ from the members' replicates, each member resampled
  within itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detclip_bench.analysis.run_dir import LoadedRun, load_run
from detclip_bench.errors import DataError
from detclip_bench.metrics.bootstrap import BootstrapState, bootstrap_ap
from detclip_bench.metrics.intervals import pooled_delta
from detclip_bench.metrics.protocols import canonical_protocol
from detclip_bench.mini_world.vocabulary import category_groups
from detclip_bench.suites.runner import fed_evaluator, member_seed

__all__ = ["AVERAGE", "Comparison", "compare_runs"]

AVERAGE = "average"  # the member name of a suite average's rows
#: the keys the tables show, in order (the JSON holds every key the evaluators report)
SHOWN_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")


@dataclass
class Arm:
    """One side of a comparison: its runs (one per training seed) and how the tables name it."""

    label: str
    runs: list[LoadedRun]

    @property
    def folders(self) -> list[str]:
        return [str(r.run_dir) for r in self.runs]


@dataclass
class Comparison:
    """``rows[arm label][member][protocol][key]``: pooled Δ entries (see ``pooled_delta``) against ``baseline``."""

    suite: str
    version: str
    baseline: Arm
    arms: list[Arm]
    replicates: int
    seed: int
    paired_seeds: bool
    confidence: float
    rows: dict[str, dict[str, dict[str, dict[str, dict]]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "suite": self.suite,
            "version": self.version,
            "baseline": {"label": self.baseline.label, "runs": self.baseline.folders},
            "arms": [{"label": a.label, "runs": a.folders} for a in self.arms],
            "bootstrap": {
                "replicates": self.replicates,
                "seed": self.seed,
                "member_seeds": "seed + member index",
                "seed_draws": "paired" if self.paired_seeds else "independent per arm",
                "confidence": self.confidence,
            },
            "units": "fractions (AP in [0, 1])",
            "deltas": self.rows,
        }

    def to_markdown(self) -> str:
        conf = f"{100 * self.confidence:g}%"
        lines = [
            f"# {self.suite} (v{self.version}): each arm against {self.baseline.label}",
            "",
            f"Baseline: {self.baseline.label} ({_runs_text(self.baseline)}). Δ = arm − baseline in AP points; "
            f"{conf} percentile intervals from {self.replicates} image resamples (seed {self.seed}, member i "
            "drawn with seed + i, the same draws in every run)"
            + (
                "; arms with several runs also resample training seeds"
                + (" (paired by position)" if self.paired_seeds else " (independently per arm)")
                if self._pooled()
                else ""
            )
            + ". P(Δ≤0): share of replicates where the arm does not beat the baseline.",
            "",
        ]
        for arm in self.arms:
            lines += [f"## {arm.label} ({_runs_text(arm)})", ""]
            for member, protocols in self.rows[arm.label].items():
                for protocol, keys in protocols.items():
                    lines += [f"### {member} [{protocol}]", ""]
                    pooled = len(arm.runs) > 1 or len(self.baseline.runs) > 1
                    head = "| metric | baseline | arm | Δ | " + conf + " interval | P(Δ≤0) |"
                    lines += [head + (" seed sd | image se | dominant |" if pooled else "")]
                    lines += ["|---|---:|---:|---:|---:|---:|" + ("---:|---:|---|" if pooled else "")]
                    for key in _ordered(keys):
                        e = keys[key]
                        cells = [
                            key,
                            _pt(e["point_a"]),
                            _pt(e["point_b"]),
                            f"{100 * e['delta']:+.1f}",
                            f"[{100 * e['interval'][0]:+.1f}, {100 * e['interval'][1]:+.1f}]",
                            f"{e['share_le_0']:.3f}",
                        ]
                        if pooled:
                            cells += [_pt(e["seed_sd"]), _pt(e["image_se"]), e["dominant"] or "–"]
                        lines.append("| " + " | ".join(cells) + " |")
                    lines.append("")
        return "\n".join(lines)

    def _pooled(self) -> bool:
        return any(len(a.runs) > 1 for a in [self.baseline, *self.arms])


def _runs_text(arm: Arm) -> str:
    return f"{len(arm.runs)} run{'s' if len(arm.runs) > 1 else ''}: " + ", ".join(arm.folders)


def _pt(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def _ordered(keys: dict) -> list[str]:
    first = [k for k in SHOWN_KEYS if k in keys]
    return first + sorted(k for k in keys if k.startswith("AP[") and k not in first)


def _suite_signature(run: LoadedRun) -> tuple:
    r = run.results
    return (r["suite"], str(r.get("version")), tuple(sorted((m, s) for m, s in r.get("splits", {}).items())))


def _check_same_suite(runs: Sequence[LoadedRun]) -> None:
    first = runs[0]
    for run in runs[1:]:
        if _suite_signature(run) != _suite_signature(first):
            raise DataError(
                str(run.run_dir / "results.json"),
                "suite",
                f"scored {_suite_signature(run)[:2]} on splits {dict(_suite_signature(run)[2])}, but "
                f"{first.run_dir} scored {_suite_signature(first)[:2]} on {dict(_suite_signature(first)[2])}: "
                "a comparison needs the same suite, version and images",
            )


def _member_replicates(
    run: LoadedRun, index: int, protocol: str, *, n_replicates: int, seed: int, confidence: float
) -> dict[str, dict]:
    """Every key's point and replicates for one member of one run (re-scored from its predictions)."""
    member = run.members[index]
    ev = fed_evaluator(run.suite, member.target, member.predictions, protocol, for_bootstrap=True)
    return bootstrap_ap(
        BootstrapState(ev),
        n_replicates=n_replicates,
        seed=member_seed(run.suite, member.member, seed),
        groups=category_groups(run.data_root, ev.gt.category_names) or None,
        confidence=confidence,
        return_replicates=True,
    )


def compare_runs(
    arms: Sequence[Sequence[str | Path]],
    *,
    labels: Sequence[str] | None = None,
    data_root: str | Path | None = None,
    data_map=None,
    n_replicates: int = 1000,
    seed: int = 0,
    paired_seeds: bool = False,
    confidence: float = 0.95,
    progress=None,
) -> Comparison:
    """Compare arms 1.. with arm 0 (the baseline); each arm a list of run folders (one per training seed).

    Every run must have scored the same suite (name, version, splits) on the same images. ``paired_seeds``:
    run i of every arm shares a training seed with run i of the baseline (then every arm holds as many runs).
    ``progress``: called with a short text per re-scored member (None: silent).
    """
    if len(arms) < 2:
        raise ValueError("compare needs a baseline and at least one more arm")
    loaded = [[load_run(f, data_root=data_root, data_map=data_map) for f in arm] for arm in arms]
    if any(not runs for runs in loaded):
        raise ValueError("an arm holds no run folder")
    _check_same_suite([r for runs in loaded for r in runs])
    names = list(labels) if labels else [_label(runs) for runs in loaded]
    made = [Arm(name, runs) for name, runs in zip(names, loaded, strict=True)]
    first = made[0].runs[0]
    out = Comparison(
        first.results["suite"],
        str(first.results.get("version")),
        made[0],
        made[1:],
        n_replicates,
        seed,
        paired_seeds,
        confidence,
    )
    protocols = [canonical_protocol(p) for p in first.results["members"][first.members[0].member]]
    members = [m.member for m in first.members]
    reps: list[list[dict]] = []  # arm -> run -> {(member, protocol): bootstrap entries}
    for arm in made:
        per_run = []
        for run in arm.runs:
            if [m.member for m in run.members] != members:
                raise DataError(str(run.run_dir / "results.json"), "members", f"scored {run.members}, not {members}")
            table = {}
            for i, member in enumerate(members):
                for protocol in protocols:
                    if progress is not None:
                        progress(f"{run.run_dir.name}: {member} [{protocol}]")
                    table[(member, protocol)] = _member_replicates(
                        run, i, protocol, n_replicates=n_replicates, seed=seed, confidence=confidence
                    )
            per_run.append(table)
        reps.append(per_run)
    if len(members) > 1:
        for per_run in reps:
            for table in per_run:
                for protocol in protocols:
                    table[(AVERAGE, protocol)] = _average([table[(m, protocol)] for m in members])
        members = [*members, AVERAGE]
    for arm, arm_reps in zip(made[1:], reps[1:], strict=True):
        rows: dict[str, dict[str, dict[str, dict]]] = {}
        for member in members:
            for protocol in protocols:
                cells = _deltas(reps[0], arm_reps, member, protocol, paired_seeds, seed, confidence)
                rows.setdefault(member, {})[protocol] = cells
        out.rows[arm.label] = rows
    return out


def _label(runs: list[LoadedRun]) -> str:
    names = [r.run_dir.name for r in runs]
    return names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1} runs"


def _average(entries: list[dict[str, dict]]) -> dict[str, dict]:
    """A member average's point and replicates per key (-1 where some member's replicate is undefined)."""
    out = {}
    for key in entries[0]:
        if key == "per_category" or any(key not in e or e[key]["point"] < 0 for e in entries):
            continue
        table = np.stack([e[key]["replicates"] for e in entries])
        mean = np.where((table > -1).all(axis=0), table.mean(axis=0), -1.0)
        out[key] = {"point": float(np.mean([e[key]["point"] for e in entries])), "replicates": mean}
    return out


def _deltas(base_runs, arm_runs, member, protocol, paired_seeds, seed, confidence) -> dict[str, dict]:
    first, other = base_runs[0][(member, protocol)], arm_runs[0][(member, protocol)]
    cells = {}
    for key in (k for k in first if k in other and k != "per_category" and (k.startswith("AP") or k in SHOWN_KEYS)):
        if key.startswith("AR"):
            continue
        a = [t[(member, protocol)].get(key) for t in base_runs]
        b = [t[(member, protocol)].get(key) for t in arm_runs]
        if any(e is None or e["point"] < 0 for e in a + b):
            continue
        pooled = pooled_delta(
            np.stack([e["replicates"] for e in a]),
            np.stack([e["replicates"] for e in b]),
            [e["point"] for e in a],
            [e["point"] for e in b],
            paired_seeds=paired_seeds,
            seed=seed + 1,
            confidence=confidence,
        )
        if pooled is not None:
            cells[key] = pooled
    return cells


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """Interval bars: Δ per metric (the suite's first member or its average) and, for suites of several
    members, Δ AP per member; one row of panels per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = comparison.arms
    multi = any(AVERAGE in comparison.rows[a.label] for a in arms)
    fig, axes = plt.subplots(
        len(arms), 2 if multi else 1, figsize=(11 if multi else 6, 0.5 + 3.2 * len(arms)), squeeze=False
    )
    for row, arm in enumerate(arms):
        rows = comparison.rows[arm.label]
        summary = AVERAGE if multi else next(iter(rows))
        protocol = next(iter(rows[summary]))
        cells = rows[summary][protocol]
        _bars(axes[row][0], [(k, cells[k]) for k in _ordered(cells)], f"{arm.label}: {summary} [{protocol}]")
        if multi:
            per_member = [(m.split("/")[-1], p[protocol]["AP"]) for m, p in rows.items() if "AP" in p[protocol]]
            _bars(axes[row][1], per_member, f"{arm.label}: Δ AP per member [{protocol}]")
    fig.suptitle(f"{comparison.suite}: Δ vs {comparison.baseline.label} ({100 * comparison.confidence:g}% intervals)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bars(ax, items: list[tuple[str, dict]], title: str) -> None:
    names = [n for n, _ in items]
    y = np.arange(len(items))[::-1]
    deltas = np.array([100 * e["delta"] for _, e in items])
    lo = np.array([100 * e["interval"][0] for _, e in items])
    hi = np.array([100 * e["interval"][1] for _, e in items])
    colors = ["tab:green" if lo_ > 0 else "tab:red" if hi_ < 0 else "tab:gray" for lo_, hi_ in zip(lo, hi, strict=True)]
    ax.hlines(y, lo, hi, colors=colors, lw=2)  # the interval need not contain the point (docs/eval.md §7)
    ax.scatter(deltas, y, c=colors, zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel("Δ AP (points)")
    ax.set_title(title, fontsize=9)
