"""Matplotlib figures for the leaderboard (Agg backend: no display needed).

Paper bars are plain, toolkit bars are hatched, so a reader can never take our number for the
paper's. Mini-world rows are plotted only in their own ``mini_*`` figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from leaderboards.schema import Entry, suite_family

__all__ = ["make_plots", "plot_lvis_rcf", "plot_odinw", "plot_resolution_tradeoff"]

RCF = ("APr", "APc", "APf")
_SHORT_SETTING = {"zero-shot": "ZS", "fine-tuned": "FT", "supervised": "sup."}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _tag(e: Entry) -> str:
    return e.table if e.evaluated_by == "paper" else f"{e.evaluated_by}, {e.scale}"


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_odinw(entries: Sequence[Entry], path: Path, title: str) -> Path:
    """Per-dataset AP bars, one group per dataset, one bar per model (T-size models first)."""
    plt = _pyplot()
    datasets = list(dict.fromkeys(name for e in entries for name in e.per_dataset))
    width = 0.8 / max(len(entries), 1)
    fig, ax = plt.subplots(figsize=(max(10, 1.1 * len(datasets) + 2), 5))
    cmap = plt.get_cmap("tab10")
    for i, e in enumerate(entries):
        xs = [d + (i - (len(entries) - 1) / 2) * width for d in range(len(datasets))]
        ys = [e.per_dataset.get(name, {}).get("AP", 0.0) for name in datasets]
        hatch = None if e.evaluated_by == "paper" else "//"
        ax.bar(
            xs,
            ys,
            width,
            label=f"{e.model} ({_tag(e)})",
            color=cmap(i % 10),
            hatch=hatch,
            edgecolor="black",
            linewidth=0.3,
        )
    ax.set_xticks(range(len(datasets)), datasets, rotation=35, ha="right")
    ax.set_ylabel("AP (%)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_lvis_rcf(entries: Sequence[Entry], path: Path, title: str) -> Path:
    """APr/APc/APf bars per model; rows repeated across tables are drawn once, labelled with every table."""
    plt = _pyplot()
    groups: dict[tuple, list[Entry]] = {}
    for e in entries:
        key = (e.model, e.backbone, e.pretrain_data, e.setting, e.evaluated_by, e.scale, *(e.metrics[m] for m in RCF))
        groups.setdefault(key, []).append(e)
    fig, ax = plt.subplots(figsize=(max(8, 1.25 * len(groups) + 2), 5.5))
    colors = {"APr": "#d62728", "APc": "#ff7f0e", "APf": "#1f77b4"}
    labels = []
    for i, same in enumerate(groups.values()):
        e = same[0]
        hatch = None if e.evaluated_by == "paper" else "//"
        for j, m in enumerate(RCF):
            ax.bar(
                i + (j - 1) * 0.27,
                e.metrics[m],
                0.27,
                color=colors[m],
                hatch=hatch,
                edgecolor="black",
                linewidth=0.3,
                label=m if i == 0 else None,
            )
        tables = ", ".join(dict.fromkeys(_tag(s) for s in same))
        size = f" {e.backbone}" if e.backbone and e.backbone[-2:] not in e.model else ""
        labels.append(f"{e.model}{size}\n{e.pretrain_data or ''}\n{_SHORT_SETTING[e.setting]} ({tables})")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7.5)
    ax.set_ylabel("AP (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_resolution_tradeoff(entries: Sequence[Entry], path: Path, title: str) -> Path:
    """AP against GPU memory and against GPU hours, one point per image-text resolution."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (key, xlabel) in zip(
        axes, (("gpu_memory_gb", "GPU memory (GB)"), ("gpu_hours", "training time (GPU hours)")), strict=True
    ):
        xs = [e.cost[key] for e in entries]
        ys = [e.metrics["AP"] for e in entries]
        ax.plot(xs, ys, "o-", color="#1f77b4")
        for e, x, y in zip(entries, xs, ys, strict=True):
            res = e.config.get("image_text_resolution", "?")
            ax.annotate(f"{res}²", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("zero-shot AP (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)


def make_plots(full: Sequence[Entry], mini: Sequence[Entry], out_dir: Path) -> list[Path]:
    """Every figure the given rows support; returns the files written."""
    written: list[Path] = []
    for prefix, rows, scale_note in (("", full, ""), ("mini_", mini, " — MINI WORLD, not comparable to the paper")):
        odinw = [e for e in rows if e.per_dataset and suite_family(e.suite) == "odinw13"]
        if odinw:
            written.append(
                plot_odinw(odinw, out_dir / f"{prefix}odinw13_per_dataset.png", f"ODinW13 per-dataset AP{scale_note}")
            )
        for suite in dict.fromkeys(suite_family(e.suite) for e in rows):
            rcf = [e for e in rows if suite_family(e.suite) == suite and all(m in e.metrics for m in RCF)]
            if rcf:
                written.append(
                    plot_lvis_rcf(
                        rcf, out_dir / f"{prefix}lvis_rcf_{suite}.png", f"{suite}: APr / APc / APf{scale_note}"
                    )
                )
        cost = [e for e in rows if {"gpu_memory_gb", "gpu_hours"} <= set(e.cost) and "AP" in e.metrics]
        if cost:
            written.append(
                plot_resolution_tradeoff(
                    cost,
                    out_dir / f"{prefix}resolution_tradeoff.png",
                    f"Image-text resolution: AP vs cost (appendix Table 4){scale_note}",
                )
            )
    return written
