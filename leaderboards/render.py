"""Assemble leaderboard sections and write leaderboard.md, leaderboard.json and the plots.

Layout rules (pains 3 and 10 of docs/design.md):

* every paper table is its own section, with its caption, the protocol the paper states and the
  inconsistencies we found;
* full-scale toolkit results with the same suite family, setting and protocol are appended to
  that table, marked ``ours (this toolkit)`` / ``peer via adapter``;
* mini-world results only ever appear in a separate section labelled as not comparable;
* every printed average is recomputed from per-dataset rows and a disagreement is flagged.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detclip_bench.errors import DataError
from detclip_bench.io import atomic_write_json, atomic_write_text
from detclip_bench.metrics.protocols import PROTOCOLS
from leaderboards.averages import AverageCheck, check_averages
from leaderboards.plots import make_plots  # matplotlib itself is imported only when plots are drawn
from leaderboards.schema import SUITES, Entry, PaperTable, suite_family
from leaderboards.validate import to_jsonable

__all__ = ["Section", "build_sections", "how_evaluated", "markdown_table", "render_markdown", "write_leaderboard"]

_METRIC_ORDER = ("AP", "APr", "APc", "APf", "AR", "ARs", "ARm", "ARl")
_BY = {"paper": "paper", "ours": "**ours (this toolkit)**", "peer-adapter": "**peer via adapter**"}
_LABELS = {"image_text_resolution": "Image-text res", "gpu_memory_gb": "GPU memory (GB)", "gpu_hours": "GPU hours"}
OWN_TITLE = "Your datasets (own-dataset runs, no paper table)"
MINI_TITLE = "Mini-world results (synthetic mini world — NOT comparable to the paper's numbers)"


@dataclass
class Section:
    title: str
    kind: str  # "paper" | "toolkit-full" | "toolkit-own" | "toolkit-mini"
    entries: list[Entry]
    description: list[str] = field(default_factory=list)


def _matches(entry: Entry, table: PaperTable) -> bool:
    fam = suite_family(entry.suite)
    return any(fam == e.suite and entry.setting == e.setting and entry.protocol == e.protocol for e in table.entries)


def build_sections(tables: Sequence[PaperTable], results: Sequence[Entry], suite: str | None = None) -> list[Section]:
    """Paper tables (with matching full-scale toolkit rows appended), then unmatched full rows, own-dataset rows,
    then mini rows."""
    want = suite_family(suite) if suite else None

    def keep(e: Entry) -> bool:
        return want is None or suite_family(e.suite) == want

    full = [r for r in results if r.scale == "full" and keep(r)]
    mini = [r for r in results if r.scale == "mini" and keep(r)]
    sections, placed = [], set()
    for t in tables:
        rows = [e for e in t.entries if keep(e)]
        if not rows:
            continue
        ours = [r for r in full if _matches(r, t)]
        placed.update(r.key for r in ours)
        stated = dict.fromkeys(f"{PROTOCOLS[e.protocol]} — paper states: “{e.protocol_stated}”" for e in rows)
        desc = [f"*{t.caption}*", f"Source: {t.document} Table {t.number}, transcribed from `{t.transcribed_from}`."]
        desc += [f"Protocol: {s}" for s in stated]
        desc += [f"Note: {n}" for n in t.notes]
        sections.append(Section(f"{t.document.capitalize()} Table {t.number}: {t.title}", "paper", rows + ours, desc))
    rest = [r for r in full if r.key not in placed]
    if rest:
        sections.append(Section("Toolkit results (full scale) with no matching paper table", "toolkit-full", rest))
    own = [r for r in results if r.scale == "own" and keep(r)]
    if own:
        sections.append(
            Section(
                OWN_TITLE,
                "toolkit-own",
                own,
                ["Runs on datasets of your own (`eval --dataset`, `finetune --dataset`): no paper reports them."],
            )
        )
    for name in dict.fromkeys(r.suite for r in mini):
        rows = [r for r in mini if r.suite == name]
        sections.append(
            Section(
                f"{MINI_TITLE}: {name}",
                "toolkit-mini",
                rows,
                [
                    "These numbers come from the synthetic mini world; they test the pipeline and the "
                    "direction of the paper's claims, not its values."
                ],
            )
        )
    return sections


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value * 10 - round(value * 10)) < 1e-9 else f"{value:.2f}"
    return str(value).replace("|", "\\|")


def _with_interval(value: float | None, pair: tuple[float, float] | None) -> object:
    """A metric cell: the value, and its 95 % bootstrap interval beside it when the row has one."""
    if value is None or pair is None:
        return value
    return f"{_fmt(value)} [{pair[0]:.1f}, {pair[1]:.1f}]"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def how_evaluated(entry: Entry) -> str:
    """The "How evaluated" cell: paper-reported (where), or what detclip-bench ran (model spec, suite, protocol)."""
    if entry.evaluated_by == "paper":
        return f"paper-reported ({entry.source.document.capitalize()} {entry.source.table})"
    spec = f"`{entry.model_spec}`" if entry.model_spec else "(model spec not recorded)"
    return f"{_BY[entry.evaluated_by]}: evaluated by detclip-bench, --model {spec}, {entry.protocol_stated}"


def _section_table(section: Section, checks: dict[str, AverageCheck]) -> str:
    es = section.entries
    metrics = [m for m in _METRIC_ORDER if any(m in e.metrics for e in es)]
    metrics += sorted({m for e in es for m in e.metrics} - set(metrics))
    datasets = list(dict.fromkeys(d for e in es for d in e.per_dataset))
    config = list(dict.fromkeys(k for e in es for k in e.config))
    cost = list(dict.fromkeys(k for e in es for k in e.cost))
    multi_protocol = len({e.protocol for e in es}) > 1 or section.kind != "paper"
    has_checks = any(e.key in checks for e in es)
    avg_label = "Avg (printed)" if all(suite_family(e.suite) == "odinw13" for e in es) else "AP"
    header = [
        "Model",
        "Backbone",
        "Pretrain data",
        "Setting",
        *(["Protocol"] if multi_protocol else []),
        *[_LABELS.get(k, k) for k in (*config, *cost)],
        *datasets,
        *[(avg_label if m == "AP" else m) for m in metrics],
    ]
    if has_checks:
        header += ["Avg (recomputed)", "Check"]
    header += ["Row (as printed)", "How evaluated"]
    rows = []
    for e in es:
        row: list[object] = [e.model, e.backbone, e.pretrain_data, e.setting]
        row += [e.protocol] if multi_protocol else []
        row += [e.config.get(k) for k in config] + [e.cost.get(k) for k in cost]
        row += [_with_interval(e.per_dataset.get(d, {}).get("AP"), e.per_dataset_intervals.get(d)) for d in datasets]
        row += [_with_interval(e.metrics.get(m), e.intervals.get(m)) for m in metrics]
        if has_checks:
            c = checks.get(e.key)
            flag = (
                ""
                if c is None
                else ("ok" if c.ok else f"⚠ **MISMATCH** ({c.printed:.1f} printed vs {c.recomputed:.2f})")
            )
            row += [None if c is None else round(c.recomputed, 2), flag]
        row += [e.source.row if e.evaluated_by == "paper" else e.source.table, how_evaluated(e)]
        rows.append(row)
    return markdown_table(header, rows)


def render_markdown(sections: Sequence[Section], checks: Sequence[AverageCheck], plots: Sequence[str] = ()) -> str:
    by_key = {c.entry_key: c for c in checks}
    out = [
        "# DetCLIPv2 leaderboard",
        "",
        "All metrics are percentages as printed. `paper` rows are the paper's published numbers; "
        "rows marked **ours (this toolkit)** (the DetCLIPv2 reference model) or **peer via adapter** (a public "
        "detector, `--model hf:<id>`) were evaluated by detclip-bench; their *How evaluated* cell names the model "
        "spec, suite (with version) and protocol. "
        "Averages are recomputed from the per-dataset rows; a gap larger than rounding is flagged ⚠. "
        "A toolkit number evaluated with a bootstrap carries its 95 % interval, `AP [lo, hi]`: the spread from "
        "drawing another image set like the suite's (for an average, each dataset resampled within itself), "
        "not another dataset or training run; the paper prints none.",
        "",
    ]
    bad = [c for c in checks if not c.ok]
    if bad:
        out += ["## Average mismatches", ""] + [f"- ⚠ {c.describe()}" for c in bad] + [""]
    for s in sections:
        out += [f"## {s.title}", ""] + [f"{d}  " for d in s.description]
        out += ["", _section_table(s, by_key), ""]
    if plots:
        out += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(out)


def write_leaderboard(
    out_dir: str | os.PathLike,
    tables: Sequence[PaperTable],
    results: Sequence[Entry],
    suite: str | None = None,
    plots: bool = True,
) -> dict[str, object]:
    """Write leaderboard.md, leaderboard.json and PNGs into ``out_dir``; returns the paths and the average checks."""
    if (
        suite
        and suite_family(suite) not in SUITES
        and not any(suite_family(r.suite) == suite_family(suite) for r in results)
    ):
        raise DataError("--suite", suite, f"no leaderboard rows for this suite; known: {sorted(SUITES)}")
    out_dir = Path(out_dir)
    sections = build_sections(tables, results, suite)
    all_rows = list({e.key: e for s in sections for e in s.entries}.values())  # a result may sit in several tables
    acknowledged = frozenset(k for t in tables for k in t.acknowledged_keys())
    checks = check_averages(all_rows, acknowledged=acknowledged)
    stale = sorted(c.entry_key for c in checks if c.acknowledged and c.ok)
    if stale:
        raise DataError("leaderboards/data", ", ".join(stale), "acknowledged_mismatches lists rows that now match")
    pngs: list[Path] = []
    if plots:
        pngs = make_plots(
            [e for e in all_rows if e.scale == "full"], [e for e in all_rows if e.scale == "mini"], out_dir
        )
    md = out_dir / "leaderboard.md"
    atomic_write_text(md, render_markdown(sections, checks, [p.name for p in pngs]))
    payload = {
        "generated": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "suite_filter": suite,
        "metrics_unit": "percent",
        "sections": [
            {
                "title": s.title,
                "kind": s.kind,
                "description": s.description,
                "rows": [{"key": e.key, **to_jsonable(e)} for e in s.entries],
            }
            for s in sections
        ],
        "average_checks": [{**to_jsonable(c), "ok": c.ok} for c in checks],
        "plots": [p.name for p in pngs],
    }
    js = out_dir / "leaderboard.json"
    atomic_write_json(js, payload)
    return {"markdown": md, "json": js, "plots": pngs, "checks": checks}
