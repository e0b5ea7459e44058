"""What a reproduction hands its tables: per run, its evaluations keyed by (setting, suite), in percent.

:meth:`recipes.reproduce.Reproduction.run` returns a :class:`ReproductionReport`; the paper-layout table
(:mod:`recipes.paper_layout`) and the paired-arms report (:mod:`recipes.paired_report`,
:mod:`recipes.paired_intervals`) read it, and ``<experiment>.json`` holds its :meth:`~ReproductionReport.to_dict`.
A :class:`~detclip_bench.suites.runner.SuiteResult` holds fractions (AP 0.123); an :class:`Evaluation` holds
percent (12.3), as the tables print them, and says so in ``unit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from detclip_bench.suites.suite import Setting

__all__ = ["Evaluation", "ReproductionReport", "RunRow"]


@dataclass(frozen=True)
class Evaluation:
    """One suite scored with one run's weights in one setting: a cell of the paper-layout table.

    ``metrics``: the suite's aggregate (AP, AP50, APr, ...; numbers with no value left out); ``groups``: mean AP
    per mini-world concept group (detection / grounding / caption-only), {} elsewhere; ``per_dataset``: each
    member's AP, for suites that average their members (None otherwise). All in ``unit``: percent.
    """

    setting: Setting
    suite: str
    metrics: dict[str, float]
    groups: dict[str, float] = field(default_factory=dict)
    per_dataset: dict[str, dict[str, float]] | None = None
    unit: Literal["percent"] = "percent"

    def __post_init__(self) -> None:
        if self.unit != "percent":
            raise ValueError(f"an Evaluation holds percent, not {self.unit!r}")

    @property
    def label(self) -> str:
        """How tables and ``<experiment>.json`` name it: ``"zero-shot mini-lvis"``."""
        return f"{self.setting} {self.suite}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "groups": self.groups,
            **({"per_dataset": self.per_dataset} if self.per_dataset is not None else {}),
        }


@dataclass
class RunRow:
    """One pre-training run of an experiment (or the random-init floor) and what was scored with its weights.

    ``seed``/``arm``: the training seed and the paired-ablation arm ("" when the run is not one); the
    random-init floor has neither. ``training``: held-out alignment gauges and training facts, when measured.
    """

    run: str
    row: str
    pretrain_data: str
    model: str
    cost: dict[str, Any]
    config: str
    seed: int | None = None
    arm: str = ""
    random_init: bool = False
    training: dict[str, Any] | None = None
    evaluations: dict[tuple[Setting, str], Evaluation] = field(default_factory=dict)

    def add(self, evaluation: Evaluation) -> None:
        self.evaluations[(evaluation.setting, evaluation.suite)] = evaluation

    def zero_shot(self) -> list[Evaluation]:
        return [e for e in self.evaluations.values() if e.setting == "zero-shot"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "row": self.row,
            "pretrain_data": self.pretrain_data,
            "model": self.model,
            "cost": self.cost,
            "config": self.config,
            **({} if self.random_init else {"seed": self.seed, "arm": self.arm}),
            **({"training": self.training} if self.training is not None else {}),
            **{e.label: e.to_dict() for e in self.evaluations.values()},
        }


@dataclass
class ReproductionReport:
    """An experiment's runs and evaluations, and what its tables need to say about it."""

    experiment: str
    title: str
    scale: str
    measure_cost: bool
    paper_table: str  # the leaderboards' paper table id, "" when there is none
    notes: list[str]
    runs: list[RunRow]

    def to_dict(self) -> dict[str, Any]:
        """``<experiment>.json``'s report part (the table's header and rows follow it)."""
        return {
            "experiment": self.experiment,
            "title": self.title,
            "scale": self.scale,
            "measure_cost": self.measure_cost,
            "paper_table": self.paper_table,
            "notes": list(self.notes),
            "runs": [r.to_dict() for r in self.runs],
        }
