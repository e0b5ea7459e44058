"""Our numbers in the paper's table layout: each paper row, and under it the row we produced for it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from detclip_bench.io import atomic_write_json, atomic_write_text
from leaderboards.results import ToolkitResult
from leaderboards.schema import Entry, PaperTable
from recipes.report import ReproductionReport, RunRow

__all__ = ["match_paper_row", "write_table"]

_COST_COLUMNS = {"gpu_memory_gb": "GPU memory (GB)", "gpu_hours": "GPU hours"}
_OUR_COST = {"peak_memory_gb": "peak memory (GB)", "train_seconds": "train time (s)"}


def match_paper_row(paper_entries: Sequence[Entry], result: ToolkitResult, row_label: str) -> Entry | None:
    """The paper row a toolkit result stands for: same setting, then the recipe's row label, else model/data."""
    same = [e for e in paper_entries if e.setting == result.setting]
    if row_label:
        hits = [e for e in same if e.source.row == row_label and e.model.startswith("DetCLIPv2")]
        if hits:
            return hits[0]
    model = result.model if result.scale == "full" else "DetCLIPv2-T"  # the mini model stands in for -T
    hits = [e for e in same if e.model == model]
    by_data = [e for e in hits if e.pretrain_data == result.pretrain_data]
    unstated = [e for e in hits if not e.pretrain_data]  # rows that do not vary the data match any data
    return (by_data or unstated or [None])[0]


def _columns(entries: Sequence[Entry]) -> tuple[list[str], list[str]]:
    metrics = list(dict.fromkeys(k for e in entries for k in e.metrics))
    datasets = list(dict.fromkeys(k for e in entries for k in e.per_dataset))
    return metrics, datasets


def _fmt(v: object) -> str:
    return "–" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)


def write_table(
    report: ReproductionReport,
    results: Sequence[tuple[str, ToolkitResult]],
    out: Path,
    paper_table: PaperTable | None,
) -> dict[str, Path]:
    """``<experiment>.md`` / ``.json`` in ``out`` from ``(run key, ToolkitResult)`` pairs; rows without a
    paper counterpart are listed after the table."""
    paper_entries = list(paper_table.entries) if paper_table else []
    runs = {r.run: r for r in report.runs}
    # (result, its leaderboard entry (canonical ODinW names), matching paper row, its run's row, if any)
    ours: list[tuple[ToolkitResult, Entry, Entry | None, RunRow | None]] = []
    for run_key, res in results:
        run = runs.get(run_key)
        ours.append((res, res.to_entry("-"), match_paper_row(paper_entries, res, run.row if run else ""), run))
    metric_cols, dataset_cols = _columns([*paper_entries, *(entry for _, entry, _, _ in ours)])
    header = ["row", "model", "pretrain data", "setting", *metric_cols, *dataset_cols]
    cost_cols = [c for c in _COST_COLUMNS if any(c in e.cost for e in paper_entries)]
    if cost_cols or report.measure_cost:
        header += [_COST_COLUMNS[c] for c in cost_cols] + list(_OUR_COST.values())

    def line(label, model, data, setting, metrics, per_dataset, paper_cost, our_cost) -> list[str]:
        cells = [
            label,
            model,
            data or "",
            setting,
            *(_fmt(metrics.get(k)) for k in metric_cols),
            *(_fmt(per_dataset.get(d, {}).get("AP")) for d in dataset_cols),
        ]
        if len(header) > len(cells):
            cells += [_fmt(paper_cost.get(c)) for c in cost_cols] + [_fmt(our_cost.get(c)) for c in _OUR_COST]
        return cells

    body, placed = [], set()
    for e in paper_entries:
        body.append(line(e.source.row, e.model, e.pretrain_data, e.setting, e.metrics, e.per_dataset, e.cost, {}))
        for res, entry, match, run in ours:
            if match is e:
                placed.add(id(res))
                body.append(
                    line(
                        f"↳ ours ({res.scale})",
                        res.model,
                        res.pretrain_data,
                        res.setting,
                        res.metrics,
                        entry.per_dataset,
                        {},
                        run.cost if run else {},
                    )
                )
    extra = [
        line(
            "ours (no paper row)",
            r.model,
            r.pretrain_data,
            r.setting,
            r.metrics,
            entry.per_dataset,
            {},
            run.cost if run else {},
        )
        for r, entry, _, run in ours
        if id(r) not in placed
    ]
    title = f"# {report.title} — {report.experiment}"
    source = (
        f"Paper rows: {paper_table.document} Table {paper_table.number} ({paper_table.transcribed_from}); AP in %."
        if paper_table
        else "No paper table."
    )
    md = [title, "", source, ""]
    md += [f"Note: {n}" for n in report.notes]
    md += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(c) + " |" for c in body + extra]
    groups = [(r.run, e.label, e.groups) for r in report.runs for e in r.evaluations.values() if e.groups]
    if groups:
        names = list(dict.fromkeys(g for _, _, gs in groups for g in gs))
        md += [
            "",
            "AP (%) by concept group of the mini world's vocabulary (caption-only = never boxed in training):",
            "",
            "| run | evaluation | " + " | ".join(names) + " |",
            "|" + "---|" * (len(names) + 2),
        ]
        md += [f"| {run} | {key} | " + " | ".join(_fmt(gs.get(n)) for n in names) + " |" for run, key, gs in groups]
    name = report.experiment
    atomic_write_text(out / f"{name}.md", "\n".join(md) + "\n")
    payload = {**report.to_dict(), "header": header, "rows": body + extra}
    atomic_write_json(out / f"{name}.json", payload)
    return {"markdown": out / f"{name}.md", "json": out / f"{name}.json"}
