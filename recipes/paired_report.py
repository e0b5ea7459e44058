"""A paired ablation's arms side by side: per seed, the mean over seeds, and the paired difference.

Input is a reproduction report whose runs carry ``arm`` and ``seed`` (``Experiment.with_seeds``)
and zero-shot evaluations with metrics and concept-group AP. Output: ``<experiment>-paired.md`` /
``.json`` and, per evaluation suite, a plot of the caption-only group AP of each arm and seed.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from detclip_bench.io import atomic_write_json, atomic_write_text
from recipes.report import Evaluation, ReproductionReport

__all__ = ["paired_summary", "write_paired_report"]

METRICS = ("AP", "APr", "APc", "APf")
CAPTION = "group:caption"
GROUP_ORDER = ("caption", "grounding", "detection")  # the mini world's vocabulary groups
GROUP_LABEL = {"caption": "caption-only", "grounding": "grounding-only", "detection": "detection"}


def _values(evaluation: Evaluation) -> dict[str, float]:
    """The paired table's columns of one evaluation, in its unit (percent)."""
    out = {k: evaluation.metrics[k] for k in METRICS if k in evaluation.metrics}
    out.update({f"group:{g}": v for g, v in evaluation.groups.items()})
    return out


def paired_summary(report: ReproductionReport) -> dict[str, Any]:
    """{suite: {"arms": {arm: {seed: values}}, "mean": {arm: values}, "delta": {seed|"mean": values}}}."""
    table: dict[str, dict[str, dict[int, dict[str, float]]]] = defaultdict(lambda: defaultdict(dict))
    for run in report.runs:
        if not run.arm:
            continue
        for evaluation in run.zero_shot():
            table[evaluation.suite][run.arm][run.seed] = _values(evaluation)
    summary: dict[str, Any] = {}
    for suite, arms in table.items():
        names = list(arms)
        means = {
            arm: {k: mean(v[k] for v in seeds.values()) for k in next(iter(seeds.values()))}
            for arm, seeds in arms.items()
        }
        sds = {
            arm: {k: stdev(v[k] for v in seeds.values()) if len(seeds) > 1 else 0.0 for k in means[arm]}
            for arm, seeds in arms.items()
        }
        entry: dict[str, Any] = {"arms": {a: dict(s) for a, s in arms.items()}, "mean": means, "sd": sds}
        if len(names) == 2:  # treatment minus control, for every seed both arms ran
            control, treatment = names
            common = sorted(set(arms[control]) & set(arms[treatment]))
            entry["delta"] = {
                str(s): {k: arms[treatment][s][k] - arms[control][s][k] for k in arms[control][s]} for s in common
            }
            per_seed = [entry["delta"][str(x)] for x in common]
            entry["delta"]["mean"] = {k: means[treatment][k] - means[control][k] for k in means[control]}
            entry["delta"]["sd"] = {
                k: stdev(d[k] for d in per_seed) if len(per_seed) > 1 else 0.0 for k in means[control]
            }
            entry["contrast"] = f"{treatment} − {control}"
        summary[suite] = entry
    return summary


def _columns(values: dict[str, float]) -> list[str]:
    groups = [f"group:{g}" for g in GROUP_ORDER if f"group:{g}" in values]
    return [k for k in METRICS if k in values] + groups + sorted(set(values) - set(METRICS) - set(groups))


def _label(column: str) -> str:
    group = column.removeprefix("group:")
    return f"{GROUP_LABEL.get(group, group)} AP" if column.startswith("group:") else column


def write_paired_report(
    report: ReproductionReport, out: Path, plots: bool = True, data_root: Path | None = None
) -> Path | None:
    """``<experiment>-paired.md``/``.json`` (and the caption-only plot); with ``data_root`` (the data the
    evaluations scored), also paired image-bootstrap intervals of every Δ (:mod:`recipes.paired_intervals`)."""
    summary = paired_summary(report)
    if not summary:
        return None
    if data_root is not None and report.scale == "mini":
        from recipes.paired_intervals import paired_intervals

        for suite, entry in paired_intervals(report, Path(out), Path(data_root)).items():
            if suite in summary:
                summary[suite]["intervals"] = entry
    name = report.experiment
    md = [
        f"# {report.title}: paired arms per training seed",
        "",
        "AP in % (Fixed AP, LVIS-like protocol); group = mean AP over the categories of a concept group of the "
        "mini world (caption-only concepts are never boxed in training). Δ = treatment − control on the same seed.",
        "",
    ]
    md += [f"- {n}" for n in report.notes]
    for suite, entry in summary.items():
        first = next(iter(next(iter(entry["arms"].values())).values()))
        cols = _columns(first)
        md += [
            "",
            f"## {suite}",
            "",
            "| arm | seed | " + " | ".join(_label(c) for c in cols) + " |",
            "|" + "---|" * (len(cols) + 2),
        ]
        for arm, seeds in entry["arms"].items():
            for seed, values in sorted(seeds.items()):
                md.append(f"| {arm} | {seed} | " + " | ".join(f"{values[c]:.1f}" for c in cols) + " |")
            md.append(
                f"| **{arm}** | mean ± sd | "
                + " | ".join(f"**{entry['mean'][arm][c]:.1f}** ± {entry['sd'][arm][c]:.1f}" for c in cols)
                + " |"
            )
        delta = entry.get("delta", {})
        ci = entry.get("intervals", {})
        for seed, values in delta.items():
            if seed in ("mean", "sd"):
                continue
            cells = [f"{values[c]:+.1f}{_ci(ci.get('per_seed', {}).get(seed, {}).get(c))}" for c in cols]
            md.append(f"| Δ {entry['contrast']} | {seed} | " + " | ".join(cells) + " |")
        if "mean" in delta:
            md.append(
                f"| **Δ {entry['contrast']}** | mean ± sd | "
                + " | ".join(
                    f"**{delta['mean'][c]:+.1f}** ± {delta['sd'][c]:.1f}{_ci(ci.get('mean', {}).get(c))}" for c in cols
                )
                + " |"
            )
        if ci:
            md += [
                "",
                f"Δ intervals: 95 % paired image bootstrap ({ci['replicates']} replicates, bootstrap seed "
                f"{ci['bootstrap_seed']}, {ci['protocol']}): per seed the same image resamples for both arms; for "
                "the mean, seeds and images resampled together (docs/eval.md §7). " + _dominance(ci),
            ]
    md += _training_table(report)
    path = out / f"{name}-paired.md"
    atomic_write_text(path, "\n".join(md) + "\n")
    atomic_write_json(out / f"{name}-paired.json", summary)
    if plots:
        _plot(summary, out / f"{name}-caption-only.png", report.title)
    return path


def _ci(entry: dict | None) -> str:
    """`` [lo, hi]`` in AP points for a bootstrap entry (fractions), or nothing."""
    if not entry or not entry.get("interval"):
        return ""
    lo, hi = entry["interval"]
    return f" [{100 * lo:+.1f}, {100 * hi:+.1f}]"


#: (key in a run's "training" facts, column label, format)
TRAINING_COLUMNS = (
    ("text_to_image_top1", "held-out top-1 (chance 0.0625)", "{:.3f}"),
    ("cosine_gap", "held-out own-image cosine gap", "{:.3f}"),
    ("grad_ratio_first_updates", "‖λ·g_pairs‖ / ‖g_boxes‖, first 20 updates", "{:.3f}"),
    ("grad_ratio_all", "… all updates", "{:.3f}"),
    ("detection_loss_last_epoch_mean", "detection loss, last epoch", "{:.3f}"),
    ("detection_loss_change_over_last_epoch", "its linear-fit change over that epoch", "{:+.1%}"),
)


def _training_table(report: ReproductionReport) -> list[str]:
    """Per run: the alignment gauges on held-out pairs and the training facts (recipes/contrastive_gauges.py)."""
    runs = [r for r in report.runs if r.arm and r.training]
    if not runs:
        return []
    md = [
        "",
        "## Training facts and alignment gauges",
        "",
        "Held-out: the mini world's `cc/heldout` pairs, never trained on, in batches of 16: how often a caption's "
        "word-region score ranks its own image first, and its mean score with its own image minus with the others. "
        "Gradient ratio: the image-text gradient's norm over the detection/grounding gradient's in each folded "
        "update (the λ rule). Detection loss: mean over the last epoch's detection steps and the change a linear "
        "fit predicts across that epoch, relative to the mean (flat ≈ 0).",
        "",
        "| arm | seed | " + " | ".join(label for _, label, _ in TRAINING_COLUMNS) + " |",
        "|" + "---|" * (len(TRAINING_COLUMNS) + 2),
    ]
    for run in runs:
        facts = run.training or {}
        cells = [fmt.format(facts[key]) if facts.get(key) is not None else "–" for key, _, fmt in TRAINING_COLUMNS]
        md.append(f"| {run.arm} | {run.seed} | " + " | ".join(cells) + " |")
    return md


def _plot(summary: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = [s for s, e in summary.items() if any(CAPTION in v for a in e["arms"].values() for v in a.values())]
    if not suites:
        return
    fig, axes = plt.subplots(1, len(suites), figsize=(4.2 * len(suites), 3.6), squeeze=False)
    for ax, suite in zip(axes[0], suites, strict=True):
        arms = summary[suite]["arms"]
        for i, (arm, seeds) in enumerate(arms.items()):
            xs = sorted(seeds)
            ys = [seeds[s][CAPTION] for s in xs]
            ax.scatter([i] * len(ys), ys, label=arm, zorder=3)
            ax.hlines(mean(ys), i - 0.25, i + 0.25, colors="black", zorder=4)
            for s, y in zip(xs, ys, strict=True):
                ax.annotate(f"seed {s}", (i, y), textcoords="offset points", xytext=(6, 0), fontsize=7)
        names = list(arms)
        for s in set.intersection(*(set(seeds) for seeds in arms.values())):  # the same seed across arms
            ax.plot(range(len(names)), [arms[a][s][CAPTION] for a in names], color="grey", lw=0.8, zorder=2)
        ax.set_xticks(range(len(arms)), list(arms))
        ax.set_xlim(-0.6, len(arms) - 0.4)
        ax.set_title(suite)
        ax.set_ylabel("caption-only concepts: AP (%)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _dominance(ci: dict) -> str:
    """Which source dominates the mean's uncertainty; with one training seed only the images can vary."""
    dominant = {c: v["dominant"] for c, v in ci.get("mean", {}).items() if v.get("dominant")}
    if not dominant:
        return "One training seed: the intervals cover image resampling only, not another training run."
    return (
        "Which source dominates the mean's uncertainty (sd of the per-seed Δ vs the mean image standard error): "
        + ", ".join(f"{_label(c)} {d}" for c, d in dominant.items())
        + "."
    )
