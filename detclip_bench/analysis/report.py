"""``detclip-bench report``: a static HTML + markdown page for one run, no FiftyOne needed.

It shows the run's numbers as written in results.json (the r/c/f breakdown is copied, never
recomputed), PR curves at IoU 0.5 and per-category AP bars from our evaluator, and a gallery of
the most confident false positives (verdicts from :mod:`detclip_bench.analysis.matching`).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path

from detclip_bench.analysis.plots import plot_category_ap, plot_false_positive, plot_pr_curves
from detclip_bench.analysis.pr import pr_curve
from detclip_bench.analysis.records import category_names, iter_records
from detclip_bench.analysis.run_dir import LoadedRun
from detclip_bench.io import atomic_write_text
from detclip_bench.suites.suite import member_file_stem

__all__ = ["BREAKDOWN_KEYS", "Report", "write_report"]

BREAKDOWN_KEYS = ("AP", "AP50", "AP75", "APr", "APc", "APf")


@dataclass
class Report:
    html: Path
    markdown: Path
    figures: list[Path] = field(default_factory=list)
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)  # member (or "aggregate") -> key -> value


def _pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) or v < 0 else f"{100 * v:.1f}"


def _breakdown(run: LoadedRun) -> dict[str, dict[str, float]]:
    out = {
        m.member: {
            k: m.results[run.primary]["metrics"][k] for k in BREAKDOWN_KEYS if k in m.results[run.primary]["metrics"]
        }
        for m in run.members
    }
    out["aggregate"] = {k: v for k, v in run.results["aggregate"]["metrics"].items() if k in BREAKDOWN_KEYS}
    return out


def _worst_false_positives(run: LoadedRun, n: int, progress: bool):
    """The ``n`` most confident false positives over all members: (score, record, det index, names)."""
    found = []
    for member in run.members:
        names = category_names(member)
        for rec in iter_records(member, progress=progress):
            for d in (rec.match.det_status == "fp").nonzero()[0].tolist():
                found.append((float(rec.det_scores[d]), rec, d, names))
            found = sorted(found, key=lambda t: -t[0])[:n]
    return found


def write_report(run: LoadedRun, out_dir: Path | None = None, *, gallery: int = 12, progress: bool = True) -> Report:
    out_dir = Path(out_dir) if out_dir else run.run_dir / "report"
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    rep = Report(out_dir / "report.html", out_dir / "report.md", breakdown=_breakdown(run))
    curves = [pr_curve(run.suite, m, run.primary) for m in run.members]
    pr_png = plot_pr_curves(curves, fig_dir / "pr_curves.png")
    ap_pngs = [
        plot_category_ap(
            m.category_tables[run.primary],
            f"{m.member} per-category AP [{run.primary}]",
            fig_dir / f"ap_{member_file_stem(m.member)}.png",
        )
        for m in run.members
    ]
    fp_pngs = []
    for k, (score, rec, d, names) in enumerate(_worst_false_positives(run, gallery, progress)):
        path = plot_false_positive(rec, d, names, fig_dir / f"fp_{k:02d}.png")
        fp_pngs.append(
            (
                path,
                f"{rec.member} image {rec.image_id}: {names.get(int(rec.det_category_ids[d]))} "
                f"{score:.2f} ({rec.match.det_reason[d]})",
            )
        )
    rep.figures = [pr_png, *ap_pngs, *(p for p, _ in fp_pngs)]

    keys = [k for k in BREAKDOWN_KEYS if any(k in row for row in rep.breakdown.values())]
    title = f"{run.suite.name} (v{run.suite.version}) — {run.results.get('model')}"
    rel = lambda p: p.relative_to(out_dir).as_posix()  # noqa: E731
    md = [
        f"# {title}",
        "",
        f"**{run.results.get('summary', '')}**",
        "",
        f"## Breakdown [{run.primary}] (%)",
        "",
        "| member | " + " | ".join(keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    md += [f"| {m} | " + " | ".join(_pct(row.get(k)) for k in keys) + " |" for m, row in rep.breakdown.items()]
    md += ["", "## Precision-recall at IoU 0.5", "", f"![PR curves]({rel(pr_png)})", "", "## Per-category AP", ""]
    md += [f"![{p.stem}]({rel(p)})" for p in ap_pngs]
    md += ["", "## Most confident false positives", ""]
    md += [f"![{html.escape(cap)}]({rel(p)})  \n{cap}" for p, cap in fp_pngs]
    atomic_write_text(rep.markdown, "\n".join(md) + "\n")

    head = "".join(f"<th>{k}</th>" for k in keys)
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td>" + "".join(f"<td>{_pct(row.get(k))}</td>" for k in keys) + "</tr>"
        for m, row in rep.breakdown.items()
    )
    gallery_html = "".join(
        f'<figure><img src="{rel(p)}" alt="false positive"><figcaption>{html.escape(cap)}</figcaption></figure>'
        for p, cap in fp_pngs
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:2px 8px;text-align:right}"
        "figure{display:inline-block;margin:4px}figure img{max-width:340px}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p><b>{html.escape(str(run.results.get('summary', '')))}</b></p>"
        f"<h2>Breakdown [{run.primary}] (%)</h2><table><tr><th>member</th>{head}</tr>{rows}</table>"
        f"<h2>Precision-recall at IoU 0.5</h2><img src='{rel(pr_png)}' alt='PR curves'>"
        "<h2>Per-category AP</h2>"
        + "".join(f"<img src='{rel(p)}' alt='per-category AP'>" for p in ap_pngs)
        + f"<h2>Most confident false positives</h2>{gallery_html}</body></html>"
    )
    atomic_write_text(rep.html, page)
    return rep
