"""The static report's figures (matplotlib, Agg backend, nothing interactive)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detclip_bench.analysis.pr import PRCurve
from detclip_bench.analysis.records import ImageRecord

__all__ = ["frequency_legend", "plot_category_ap", "plot_false_positive", "plot_pr_curves"]

_FREQ_COLORS = {"r": "tab:red", "c": "tab:orange", "f": "tab:blue"}
_FREQ_NAMES = {"r": "rare (r)", "c": "common (c)", "f": "frequent (f)"}
MAX_BARS = 60


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pr_curves(curves: list[PRCurve], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for c in curves:
        ax.plot(c.recall, c.precision, label=f"{c.member} (AP50 {100 * c.ap50:.1f})")
    ax.set(
        xlabel="recall",
        ylabel="precision (mean over categories)",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title=f"PR at IoU 0.5 [{curves[0].protocol if curves else ''}]",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_category_ap(table, title: str, path: Path) -> Path:
    """Horizontal AP bars, sorted; the lowest and highest 30 when there are more than 60 categories."""
    plt = _pyplot()
    rows = table[table["ap"].notna()].sort_values("ap")
    if len(rows) > MAX_BARS:
        rows = rows.iloc[np.r_[0 : MAX_BARS // 2, len(rows) - MAX_BARS // 2 : len(rows)]]
        title += f" (lowest and highest {MAX_BARS // 2})"
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.22 * len(rows) + 1)))
    colors = [_FREQ_COLORS.get(f, "tab:gray") if isinstance(f, str) else "tab:gray" for f in rows["frequency"]]
    ax.barh(range(len(rows)), 100 * rows["ap"].to_numpy(), color=colors)
    ax.set_yticks(range(len(rows)), [str(n) for n in rows["name"]], fontsize=7)
    ax.set(xlabel="AP (%)", xlim=(0, 100), title=title)
    legend = frequency_legend(rows["frequency"])
    if legend:
        from matplotlib.patches import Patch

        ax.legend(
            handles=[Patch(color=color, label=label) for label, color in legend],
            title="LVIS frequency",
            fontsize=7,
            title_fontsize=7,
            loc="lower right",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def frequency_legend(frequencies) -> list[tuple[str, str]]:
    """(label, colour) of the bar colours in use: LVIS's r/c/f groups, and grey for categories without one; empty
    when no bar has a frequency (COCO, ODinW: one colour needs no key)."""
    present = {f if isinstance(f, str) and f in _FREQ_COLORS else None for f in frequencies}
    if present <= {None}:
        return []
    out = [(_FREQ_NAMES[f], _FREQ_COLORS[f]) for f in ("r", "c", "f") if f in present]
    return out + ([("no frequency", "tab:gray")] if None in present else [])


def plot_false_positive(rec: ImageRecord, det: int, names: dict[int, str], path: Path) -> Path:
    """The image with its GT (green) and the false positive (red, with name, score and reason)."""
    from detclip_bench.schema import ImageRef

    plt = _pyplot()
    image = ImageRef(path=rec.path).open(exif_transpose=True)  # upright, the frame the boxes were predicted in
    fig, ax = plt.subplots(figsize=(4, 4 * rec.height / max(rec.width, 1)))
    ax.imshow(image)
    for box, cid in zip(rec.gt.boxes, rec.gt.category_ids.tolist(), strict=True):
        x1, y1, x2, y2 = box
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="lime", lw=1.5))
        ax.text(x1, y2, names.get(cid, str(cid)), color="lime", fontsize=6, va="top")
    x1, y1, x2, y2 = rec.det_boxes[det]
    ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="red", lw=2))
    label = names.get(int(rec.det_category_ids[det]), "?")
    ax.text(
        x1,
        y1,
        f"{label} {rec.det_scores[det]:.2f} ({rec.match.det_reason[det]})",
        color="white",
        fontsize=6,
        va="bottom",
        bbox={"facecolor": "red", "alpha": 0.7, "pad": 1, "lw": 0},
    )
    ax.set_axis_off()
    fig.tight_layout(pad=0.1)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
