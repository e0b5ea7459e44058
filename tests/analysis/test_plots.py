"""The AP bar chart says what its colours mean (issue 27, point 15)."""

from __future__ import annotations

import pandas as pd

from detclip_bench.analysis.plots import frequency_legend, plot_category_ap


def test_frequency_legend_lists_the_colours_in_use():
    assert frequency_legend(["f", "r", "c", "r"]) == [
        ("rare (r)", "tab:red"),
        ("common (c)", "tab:orange"),
        ("frequent (f)", "tab:blue"),
    ]
    assert frequency_legend(["f", None]) == [("frequent (f)", "tab:blue"), ("no frequency", "tab:gray")]
    assert frequency_legend([None, float("nan")]) == []  # COCO/ODinW: one colour, no key


def test_the_lvis_bar_chart_carries_the_rcf_legend(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    seen = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: seen.append(fig) or real(fig, *a, **k))
    table = pd.DataFrame({"name": ["a", "b", "c"], "frequency": ["r", "c", "f"], "ap": [0.1, 0.5, 0.9]})
    assert plot_category_ap(table, "AP", tmp_path / "ap.png").is_file()
    legend = seen[0].axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["rare (r)", "common (c)", "frequent (f)"]
    coco = pd.DataFrame({"name": ["a"], "frequency": [None], "ap": [0.4]})
    plot_category_ap(coco, "AP", tmp_path / "coco.png")
    assert seen[1].axes[0].get_legend() is None
