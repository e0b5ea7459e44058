"""Typed leaderboard rows: the paper's printed numbers and the toolkit's own results.

Units: **every metric is a percentage** (0–100), exactly as the paper prints it, for paper
rows and toolkit results alike, so the two can sit in one table without a silent ×100 slip.

Every row names how it was evaluated (``evaluated_by``): ``paper`` (copied from the paper,
including the baselines the paper itself copied), ``ours`` (this toolkit's model and evaluator)
or ``peer-adapter`` (a public model scored by this toolkit through an adapter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

# one protocol vocabulary for papers and toolkit alike (lvis-ar: paper-only, the toolkit does not compute it)
from detclip_bench.metrics.protocols import PROTOCOLS, Protocol

__all__ = [
    "PROTOCOLS",
    "SUITES",
    "Entry",
    "PaperTable",
    "Source",
    "canonical_dataset",
    "suite_family",
]

Document = Literal["appendix", "main", "results"]
Setting = Literal["zero-shot", "fine-tuned", "supervised"]
EvaluatedBy = Literal["paper", "ours", "peer-adapter"]
#: full: a paper benchmark on real data; mini: the generated mini world; own: a dataset of the user's (eval --dataset)
Scale = Literal["full", "mini", "own"]

#: suite families the paper reports; toolkit suite names map onto them with :func:`suite_family`.
SUITES: dict[str, str] = {
    "lvis-minival": "LVIS minival (5k images)",
    "lvis-val": "LVIS v1 val (20k images, 1203 categories)",
    "odinw13": "ODinW13 (13 datasets, Avg = mean of per-dataset COCO AP)",
}

_METRIC_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_@./-]*$")

# GLIP/Roboflow folder names and short forms → the column names the appendix prints.
_ODINW_ALIASES = {
    "aerialmaritimedrone": "AerialDrone",
    "cottontailrabbits": "Rabbits",
    "northamericamushrooms": "Mushrooms",
    "thermaldogsandpeople": "Thermal",
    "vehiclesopenimages": "Vehicles",
    "shellfishopenimages": "Shellfish",
    "pascalvoc": "PascalVOC",
    "egohands": "EgoHands",
}


def canonical_dataset(name: str) -> str:
    """Map an ODinW member name (``odinw13/aquarium``, ``AerialMaritimeDrone``) to the appendix column."""
    base = name.rsplit("/", 1)[-1]
    key = re.sub(r"[^a-z0-9]", "", base.lower())
    if key in _ODINW_ALIASES:
        return _ODINW_ALIASES[key]
    return base[:1].upper() + base[1:] if base.islower() else base


def suite_family(suite: str) -> str:
    """``mini-odinw13-finetune`` → ``odinw13``: the paper suite a toolkit suite corresponds to."""
    name = suite.removeprefix("mini-")
    return name.removesuffix("-finetune")


def _check_metrics(metrics: dict[str, float], what: str) -> None:
    for key, value in metrics.items():
        if not _METRIC_KEY.match(key):
            raise ValueError(f"{what}: bad metric name {key!r}")
        if not 0.0 <= value <= 100.0:
            raise ValueError(
                f"{what}: {key}={value} is not a percentage in [0, 100] (metrics are percent, not fractions)"
            )


def _check_intervals(intervals: dict[str, tuple[float, float]], values: dict[str, float], what: str) -> None:
    """An interval belongs to a number the row prints and is an ordered pair of percentages."""
    for key, pair in intervals.items():
        if key not in values:
            raise ValueError(f"{what}: interval for {key!r}, which the row has no value for")
        if len(pair) != 2 or not 0.0 <= pair[0] <= pair[1] <= 100.0:
            raise ValueError(f"{what}: interval {key}={list(pair)} is not [lo, hi] with 0 <= lo <= hi <= 100")


@dataclass(frozen=True)
class Source:
    """Where a row's numbers were read: document, table, printed row label and columns."""

    document: Document
    table: str  # "Table 7" as printed in that document, or a results file name
    row: str  # the row label exactly as printed
    columns: str  # which printed columns the numbers come from
    transcribed_from: str  # what they were typed from (docs/method.md §5, or the appendix text) or written to

    def __post_init__(self) -> None:
        if not self.row.strip() or not self.transcribed_from.strip():
            raise ValueError("source.row and source.transcribed_from must be non-empty")


@dataclass(frozen=True)
class Entry:
    """One printed row (or, for tables with two settings side by side, one row × setting)."""

    table: str  # table id, "appendix-7", "main-6" or "ours"
    source: Source
    model: str
    suite: str
    protocol: Protocol
    protocol_stated: str  # what the paper itself says about the protocol, verbatim or close
    setting: Setting
    metrics: dict[str, float]
    evaluated_by: EvaluatedBy
    backbone: str | None = None  # None: not stated in the source
    detector: str | None = None
    pretrain_data: str | None = None
    per_dataset: dict[str, dict[str, float]] = field(default_factory=dict)
    config: dict[str, str | int | float] = field(default_factory=dict)  # the knob a table varies
    cost: dict[str, float] = field(default_factory=dict)  # gpu_memory_gb, gpu_hours
    scale: Scale = "full"
    note: str = ""
    model_spec: str | None = None  # toolkit rows: the --model spec it was evaluated with (checkpoint or hf:<id>)
    # toolkit rows evaluated with a bootstrap: 95 % image-bootstrap [lo, hi] in percent, per metric and per dataset AP
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_dataset_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        what = f"{self.table} {self.source.row!r}"
        if suite_family(self.suite) not in SUITES and self.evaluated_by == "paper":
            raise ValueError(f"{what}: unknown suite {self.suite!r}; paper suites: {sorted(SUITES)}")
        if not self.metrics and not self.per_dataset:
            raise ValueError(f"{what}: no metrics")
        _check_metrics(self.metrics, what)
        for name, row in self.per_dataset.items():
            _check_metrics(row, f"{what} [{name}]")
        if self.evaluated_by == "paper" and self.scale != "full":
            raise ValueError(f"{what}: paper rows are full scale")
        if self.evaluated_by == "paper" and (self.intervals or self.per_dataset_intervals):
            raise ValueError(f"{what}: the paper prints no intervals; only toolkit rows carry them")
        _check_intervals(self.intervals, self.metrics, f"{what} intervals")
        _check_intervals(
            self.per_dataset_intervals,
            {k: v["AP"] for k, v in self.per_dataset.items() if "AP" in v},
            f"{what} per-dataset intervals",
        )

    @property
    def key(self) -> str:
        """Unique id of the row across all tables."""
        return f"{self.table}:{self.suite}:{self.source.row}:{self.setting}"

    @property
    def label(self) -> str:
        extra = f" [{self.pretrain_data}]" if self.pretrain_data else ""
        return f"{self.model}{extra}"


@dataclass(frozen=True)
class PaperTable:
    """One data file: a table of the paper, its caption and the inconsistencies we found in it."""

    id: str  # "appendix-7"
    document: Literal["appendix", "main"]
    number: int
    title: str
    caption: str
    transcribed_from: str
    entries: tuple[Entry, ...]
    notes: tuple[str, ...] = ()
    # rows (as printed) whose printed average the paper's own rows do not give, explained in ``notes``: the
    # leaderboard still flags them in its tables, but `leaderboard` does not warn about them at every run
    acknowledged_mismatches: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.id != f"{self.document}-{self.number}":
            raise ValueError(f"table id {self.id!r} must be '{self.document}-{self.number}'")
        if not self.entries:
            raise ValueError(f"table {self.id} has no entries")
        keys = [e.key for e in self.entries]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate rows {dupes}")
        for e in self.entries:
            if e.table != self.id or e.source.document != self.document:
                raise ValueError(f"row {e.source.row!r} says table {e.table!r}/{e.source.document}, file is {self.id}")
            if e.evaluated_by != "paper":
                raise ValueError(f"row {e.source.row!r}: paper tables hold only evaluated_by='paper' rows")
        unknown = sorted(set(self.acknowledged_mismatches) - {e.source.row for e in self.entries})
        if unknown:
            raise ValueError(f"acknowledged_mismatches names rows the table does not have: {unknown}")
        if self.acknowledged_mismatches and not self.notes:
            raise ValueError("acknowledged_mismatches need a note that explains them")

    def acknowledged_keys(self) -> set[str]:
        """Entry keys of the rows whose average mismatch this table's notes already explain."""
        return {e.key for e in self.entries if e.source.row in self.acknowledged_mismatches}
