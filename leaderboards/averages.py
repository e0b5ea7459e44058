"""Recompute every multi-dataset average from its per-dataset rows and flag disagreements.

Published averages are typed by hand and drift (the main paper's DetCLIPv2-T ODinW13 average is
68.0 while its own appendix rows average to 68.5; mmdetection#12330 reports 0.284 for rows that
average to 0.232). So the leaderboard never trusts a printed average: it recomputes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leaderboards.schema import Entry

__all__ = ["PAPER_TOLERANCE", "RESULT_TOLERANCE", "AverageCheck", "check_averages", "mean_of_rows"]

#: rows and average are printed to 0.1: each row is off by ≤ 0.05, so their mean is off by ≤ 0.05,
#: and the printed average adds another ≤ 0.05. A larger gap cannot be rounding.
PAPER_TOLERANCE = 0.1
#: toolkit results store unrounded numbers; allow only float noise plus 2-decimal rounding.
RESULT_TOLERANCE = 0.01


@dataclass(frozen=True)
class AverageCheck:
    entry_key: str  # the row whose printed/stored average is checked
    rows_from: str  # the row whose per-dataset numbers were averaged (itself, or a sibling table's row)
    metric: str
    printed: float
    recomputed: float
    n_datasets: int
    tolerance: float
    acknowledged: bool = False  # the paper's data explains this gap (PaperTable.acknowledged_mismatches)

    @property
    def ok(self) -> bool:
        return abs(self.printed - self.recomputed) <= self.tolerance + 1e-9

    def describe(self) -> str:
        verdict = "ok" if self.ok else ("MISMATCH, noted in the paper's data" if self.acknowledged else "MISMATCH")
        return (
            f"{self.entry_key}: printed {self.metric} {self.printed:.1f} vs {self.recomputed:.2f} recomputed from "
            f"{self.n_datasets} rows of {self.rows_from} ({verdict}, tolerance {self.tolerance})"
        )


def mean_of_rows(entry: Entry, metric: str = "AP") -> float | None:
    """Unweighted mean of ``metric`` over the entry's per-dataset rows (the ODinW 'Avg' rule)."""
    values = [row[metric] for row in entry.per_dataset.values() if metric in row]
    if not values or len(values) != len(entry.per_dataset):
        return None
    return sum(values) / len(values)


def _sibling_id(e: Entry) -> tuple:
    return (e.model, e.backbone, e.suite, e.setting, e.protocol, e.evaluated_by, e.scale)


def check_averages(
    entries: Iterable[Entry], metric: str = "AP", acknowledged: frozenset[str] = frozenset()
) -> list[AverageCheck]:
    """One check per entry that prints an average and has rows to recompute it from.

    Rows come from the entry itself, or — for a table that prints only the average (main paper
    Table 7) — from another paper row of the same model, suite, setting and protocol that does
    list per-dataset numbers (appendix Table 7). ``acknowledged``: entry keys whose gap the data explains.
    """
    entries = list(entries)
    with_rows = {}
    for e in entries:
        if e.per_dataset and mean_of_rows(e, metric) is not None:
            with_rows.setdefault(_sibling_id(e), e)
    checks = []
    for e in entries:
        if metric not in e.metrics:
            continue
        donor = e if e.per_dataset else with_rows.get(_sibling_id(e))
        if donor is None:
            continue
        recomputed = mean_of_rows(donor, metric)
        if recomputed is None:
            continue
        tol = PAPER_TOLERANCE if e.evaluated_by == "paper" else RESULT_TOLERANCE
        checks.append(
            AverageCheck(
                e.key,
                donor.key,
                metric,
                e.metrics[metric],
                recomputed,
                len(donor.per_dataset),
                tol,
                acknowledged=e.key in acknowledged,
            )
        )
    return checks
