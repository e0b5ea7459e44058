"""Results this toolkit produces: one JSON file per (model checkpoint, suite, setting).

File format (``schema_version`` 1), written by :func:`add_result`::

    {
      "schema_version": 1,
      "model": "detclipv2-swin-t",          # name shown on the leaderboard
      "checkpoint": "runs/t/model.safetensors",  # path or hub id, as the user passed it
      "checkpoint_sha256": "9f2c…",         # identity of the weights ("" only for hub ids with a revision)
      "model_identity": "9f2c…",            # the detector's identity() from the suite run ("" if unknown)
      "suite": "mini-odinw13-finetune",     # toolkit suite name; its paper family is suite_family(suite)
      "suite_version": "1",
      "protocol": "coco",                   # lvis-fixed | lvis-standard | coco (detclip_bench.metrics.protocols)
      "setting": "fine-tuned",              # zero-shot | fine-tuned | supervised
      "scale": "mini",                      # mini (synthetic mini world) | full (real data)
      "metrics_unit": "percent",            # always percent: AP 31.3, never 0.313
      "metrics": {"AP": 41.2, "APr": ...},  # for multi-dataset suites "AP" is the average
      "per_dataset": {"Aquarium": {"AP": 50.1}, ...},
      "evaluated_by": "ours",               # ours (DetCLIPv2 via this toolkit) | peer-adapter (hf:<model>)
      "git_hash": "…", "date": "2025-01-01T12:00:00+00:00",
      "backbone": null, "pretrain_data": null, "note": "",
      "settings": {"adapter": "GroundingDinoDetector", "max_classes_per_chunk": "40", "transformers": "5.1"},
      "intervals": {"AP": [39.8, 42.6]},    # 95 % image-bootstrap [lo, hi] in percent (runs with a bootstrap)
      "per_dataset_intervals": {"Aquarium": [47.0, 53.1]},
      "bootstrap": {"replicates": 1000, "seed": 0, "member_seeds": "seed + member index"}
    }

Mini-world results are never comparable with the paper's numbers; the renderer keeps them in a
section of their own, and a ``mini-*`` suite name with ``scale: "full"`` is rejected.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from detclip_bench.errors import DataError
from detclip_bench.io import atomic_write_json, read_json
from detclip_bench.metrics.protocols import ComputedProtocol
from detclip_bench.provenance import git_hash
from leaderboards.schema import Entry, EvaluatedBy, Scale, Setting, Source, canonical_dataset, suite_family
from leaderboards.validate import build, to_jsonable

__all__ = ["DEFAULT_STORE", "ToolkitResult", "add_result", "load_result", "load_results", "result_filename"]

#: where filed results go unless a folder is given: the user's working folder, beside `leaderboard`'s default
#: output (never the installed package's own folder)
DEFAULT_STORE = Path("runs/leaderboard/results")
SCHEMA_VERSION = 1


def _git_hash_or_unknown() -> str:
    """The schema wants a string: HEAD of the checkout, or ``"unknown"`` outside a git work tree."""
    return git_hash() or "unknown"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class ToolkitResult:
    model: str
    checkpoint: str
    checkpoint_sha256: str
    suite: str
    suite_version: str
    protocol: ComputedProtocol  # the toolkit never produces a paper-only protocol (lvis-ar)
    setting: Setting
    scale: Scale
    metrics: dict[str, float]
    per_dataset: dict[str, dict[str, float]] = field(default_factory=dict)
    evaluated_by: EvaluatedBy = "ours"
    metrics_unit: Literal["percent"] = "percent"
    git_hash: str = field(default_factory=_git_hash_or_unknown)
    date: str = field(default_factory=_now)
    backbone: str | None = None
    pretrain_data: str | None = None
    note: str = ""
    model_identity: str = ""  # Detector.identity() of the run (DetCLIPv2 hashes are 16 hex digits)
    # what else decided the numbers: a peer adapter's options and library version, a suite's score threshold
    settings: dict[str, str] = field(default_factory=dict)
    # the run's image-bootstrap intervals (percent) and how they were drawn; empty: point estimates only
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_dataset_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    bootstrap: dict[str, int | str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is not supported (expected {SCHEMA_VERSION})")
        if self.evaluated_by == "paper":
            raise ValueError(
                "toolkit results are evaluated_by 'ours' or 'peer-adapter'; paper rows live in leaderboards/data"
            )
        if self.suite.startswith("mini-") and self.scale != "mini":
            raise ValueError(f"suite {self.suite!r} is a mini-world suite but scale is {self.scale!r}")
        if not self.model.strip() or not self.suite.strip():
            raise ValueError("model and suite must be non-empty")
        if self.checkpoint_sha256 and not re.fullmatch(r"[0-9a-f]{64}", self.checkpoint_sha256):
            raise ValueError(f"checkpoint_sha256 must be 64 lowercase hex digits, got {self.checkpoint_sha256!r}")
        try:
            _dt.datetime.fromisoformat(self.date)
        except ValueError as exc:
            raise ValueError(f"date must be ISO 8601, got {self.date!r}") from exc
        self.to_entry("-")  # metric range and name checks live in Entry

    def to_entry(self, path: str) -> Entry:
        """The leaderboard row for this result; ``path`` is the file it was read from.

        ODinW member names are mapped to the appendix's column names so our rows line up with the paper's.
        """
        per_dataset, per_dataset_intervals = self.per_dataset, self.per_dataset_intervals
        if suite_family(self.suite) == "odinw13":
            per_dataset = {canonical_dataset(k): v for k, v in self.per_dataset.items()}
            if len(per_dataset) != len(self.per_dataset):
                raise ValueError(f"per_dataset names collide after canonicalisation: {sorted(self.per_dataset)}")
            per_dataset_intervals = {canonical_dataset(k): v for k, v in self.per_dataset_intervals.items()}
        return Entry(
            table="ours",
            # row = the result file (unique per suite/model/checkpoint/setting), so rows never merge by model name
            source=Source("results", Path(path).name, Path(path).stem if path != "-" else self.model, "all", str(path)),
            model=self.model,
            suite=self.suite,
            protocol=self.protocol,
            protocol_stated=f"{self.protocol} (suite {self.suite} v{self.suite_version})"
            + "".join(f", {k}={v}" for k, v in sorted(self.settings.items())),
            setting=self.setting,
            metrics=self.metrics,
            evaluated_by=self.evaluated_by,
            backbone=self.backbone,
            pretrain_data=self.pretrain_data,
            per_dataset=per_dataset,
            scale=self.scale,
            note=self.note,
            model_spec=self.checkpoint,
            intervals=self.intervals,
            per_dataset_intervals=per_dataset_intervals,
        )


def result_filename(result: ToolkitResult) -> str:
    ident = (result.checkpoint_sha256 or result.model_identity or re.sub(r"[^A-Za-z0-9]+", "-", result.checkpoint))[:12]
    parts = (result.suite, result.model, ident, result.setting, result.protocol)
    stem = "__".join(re.sub(r"[^A-Za-z0-9._-]+", "-", part) for part in parts)
    return f"{stem}.json"


def add_result(result: ToolkitResult, results_dir: str | os.PathLike | None = None) -> Path:
    """Write ``result`` atomically into ``results_dir`` (default :data:`DEFAULT_STORE`); returns the path.

    The same (suite, model, checkpoint, setting, protocol) overwrites its previous file: a re-run replaces
    the old number rather than adding a duplicate row.
    """
    path = Path(results_dir or DEFAULT_STORE) / result_filename(result)
    atomic_write_json(path, to_jsonable(result))
    return path


def load_result(path: str | os.PathLike) -> ToolkitResult:
    path = Path(path)
    return build(ToolkitResult, read_json(path), str(path), "result")


def load_results(results_dir: str | os.PathLike | None = None) -> list[tuple[Path, ToolkitResult]]:
    """Every ``*.json`` in ``results_dir`` (sorted); a missing default folder simply has none."""
    results_dir = Path(results_dir) if results_dir else DEFAULT_STORE
    if not results_dir.exists():
        if results_dir == DEFAULT_STORE:
            return []
        raise DataError(str(results_dir), "-", "results folder does not exist")
    if not results_dir.is_dir():
        raise DataError(str(results_dir), "-", "results path is not a folder")
    return [(p, load_result(p)) for p in sorted(results_dir.glob("*.json"))]
