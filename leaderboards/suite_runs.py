"""Turn a suite run directory (``results.json``) into leaderboard results: the one path to a leaderboard row.

Every evaluation writes the same run directory (``detclip-bench eval``, ``finetune``, and the
evaluations inside ``reproduce``); :func:`results_from_run` turns it into rows, and both
``leaderboard --add-run`` and ``reproduce`` use it. Peer models get onto the leaderboard the same
way: ``detclip-bench eval --model hf:<owlv2 dir>`` writes a run directory; :func:`add_suite_run`
files it as a toolkit result marked ``peer-adapter`` (or ``ours`` for a DetCLIPv2 checkpoint),
keeping the model spec, suite, suite version and protocol, so the rendered row says exactly how
it was evaluated.

A run evaluated with a bootstrap (``eval``'s default) carries its 95 % image-bootstrap intervals into the
rows: every kept metric's, each member's AP and, for averaged suites, the average's (each member resampled
within itself), with the replicate count and seed.

Units: suite runs store fractions (COCO/LVIS tools' convention, -1 = undefined); leaderboard
results are percentages. Undefined metrics are left out, never written as 0 or -100.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from detclip_bench.errors import DataError
from detclip_bench.io import read_json
from detclip_bench.suites import SUITES
from leaderboards.results import ToolkitResult, add_result
from leaderboards.schema import EvaluatedBy

__all__ = ["HF_PREFIX", "add_suite_run", "results_from_run"]

HF_PREFIX = "hf:"  # the --model prefix of transformers peer detectors (detclip_bench.adapters.models)
# the metrics the paper's tables print; AP50/AP75/APs/... stay in the run directory
KEPT_METRICS = ("AP", "APr", "APc", "APf")
# results.json "setting": what was done to the weights before scoring (leaderboard vocabulary)
_SETTINGS = ("zero-shot", "fine-tuned")


def _percent(metrics: dict, path: Path, where: str) -> dict[str, float]:
    out = {}
    for key in KEPT_METRICS:
        value = metrics.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)) or value < 0:
            continue  # undefined (e.g. no rare categories): left out
        if value > 1:
            raise DataError(str(path), where, f"{key}={value} is not a fraction in [0, 1]")
        out[key] = 100.0 * float(value)
    return out


def _percent_intervals(entries: dict | None, kept: dict[str, float]) -> dict[str, tuple[float, float]]:
    """``{key: (lo, hi)}`` in percent from a results.json ``intervals`` record, for the metrics the row keeps."""
    out = {}
    for key, entry in (entries or {}).items():
        pair = entry.get("interval") if isinstance(entry, dict) else None
        if key in kept and pair is not None:
            out[key] = (100.0 * float(pair[0]), 100.0 * float(pair[1]))
    return out


@dataclass(frozen=True)
class _ProtocolRow:
    """One protocol's leaderboard numbers from a suite run: suite metrics, per-member AP, and their intervals."""

    metrics: dict[str, float]
    per_dataset: dict[str, dict[str, float]]
    intervals: dict[str, tuple[float, float]]
    per_dataset_intervals: dict[str, tuple[float, float]]


def _protocol_metrics(run: dict, protocol: str, path: Path) -> _ProtocolRow:
    """Suite-level metrics and per-member rows for one protocol; the suite AP is recomputed and checked."""
    members = {m: res[protocol] for m, res in run["members"].items()}
    per_member = {m: _percent(res["metrics"], path, f"members[{m!r}][{protocol!r}]") for m, res in members.items()}
    if len(per_member) == 1:  # a single-dataset suite (LVIS): its numbers are the suite's
        ((member, metrics),) = per_member.items()
        return _ProtocolRow(metrics, {}, _percent_intervals(members[member].get("intervals"), metrics), {})
    aps = [row["AP"] for row in per_member.values() if "AP" in row]
    if len(aps) != len(per_member):
        raise DataError(str(path), protocol, "a member has no AP, so the suite average is undefined")
    metrics = {"AP": sum(aps) / len(aps)}
    aggregate = run["aggregate"] if run["aggregate"].get("protocol") == protocol else {}
    stored = aggregate.get("metrics", {}).get("AP")
    if stored is not None and abs(100 * stored - metrics["AP"]) > 1e-9:
        raise DataError(str(path), "aggregate", f"stored Avg {100 * stored:.4f} != mean of members {metrics['AP']:.4f}")
    member_intervals = {m: _percent_intervals(res.get("intervals"), per_member[m]) for m, res in members.items()}
    per_dataset_intervals = {m: iv["AP"] for m, iv in member_intervals.items() if "AP" in iv}
    return _ProtocolRow(
        metrics,
        {m: {"AP": row["AP"]} for m, row in per_member.items()},
        _percent_intervals(aggregate.get("intervals"), metrics),
        per_dataset_intervals,
    )


# adapter settings that say how a peer was run; the processor dict stays in the run folder's results.json
_NOT_SHOWN = frozenset({"processor", "batch_size"})


def _settings(run: dict) -> dict[str, str]:
    """The settings a leaderboard row states: a peer adapter's options and transformers version, and the
    score threshold a suite asks of every model."""
    adapter = run.get("model_provenance", {}).get("adapter", {})
    out = {k: str(v) for k, v in adapter.items() if k not in _NOT_SHOWN and v is not None}
    if run.get("score_threshold") is not None:
        out["score_threshold"] = str(run["score_threshold"])
    return out


def _read_run(run_dir: Path) -> tuple[Path, dict]:
    path = run_dir / "results.json" if run_dir.is_dir() else run_dir
    run = read_json(path)
    info = path.with_name("run_info.json")  # date and git hash live beside results.json
    if info.is_file():
        run = {**read_json(info), **run}
    required = ("model", "model_identity", "suite", "version", "setting", "metrics", "aggregate", "members", "date")
    missing = [k for k in required if k not in run]
    if missing or not isinstance(run["aggregate"], dict) or not run["members"]:
        raise DataError(
            str(path),
            "results.json",
            f"not a suite run (missing or empty: {missing or ['aggregate/members']}); "
            "expected the results.json that `detclip-bench eval` writes",
        )
    if run["setting"] not in _SETTINGS:
        raise DataError(str(path), "setting", f"unknown setting {run['setting']!r}; expected one of {_SETTINGS}")
    return path, run


def results_from_run(
    run_dir: str | os.PathLike,
    model_label: str | None = None,
    *,
    evaluated_by: EvaluatedBy | None = None,
    backbone: str | None = None,
    pretrain_data: str | None = None,
    note: str = "",
) -> list[ToolkitResult]:
    """One :class:`ToolkitResult` per protocol the run scored (LVIS suites: Fixed and standard AP).

    ``model_label`` is the row's name (default: the ``--model`` spec); ``checkpoint`` is that spec; ``evaluated_by`` defaults to ``peer-adapter`` for
    ``hf:`` models and ``ours`` otherwise. Mini-world runs are recorded with ``scale="mini"``.
    """
    path, run = _read_run(Path(run_dir))
    spec = str(run["model"])
    identity = str(run["model_identity"])
    results = []
    for protocol in run["metrics"]:
        row = _protocol_metrics(run, protocol, path)
        try:
            results.append(
                ToolkitResult(
                    model=model_label or spec,
                    checkpoint=spec,
                    model_identity=identity,
                    checkpoint_sha256=identity if re.fullmatch(r"[0-9a-f]{64}", identity) else "",
                    suite=run["suite"],
                    suite_version=str(run["version"]),
                    protocol=protocol,
                    setting=run["setting"],
                    scale="own" if run.get("dataset") else _scale(run["suite"]),
                    metrics=row.metrics,
                    per_dataset=row.per_dataset,
                    intervals=row.intervals,
                    per_dataset_intervals=row.per_dataset_intervals,
                    bootstrap=run.get("bootstrap", {}) if row.intervals or row.per_dataset_intervals else {},
                    evaluated_by=evaluated_by or ("peer-adapter" if spec.startswith(HF_PREFIX) else "ours"),
                    git_hash=run.get("git_hash") or "unknown",
                    date=run["date"],
                    backbone=backbone,
                    pretrain_data=pretrain_data,
                    note=note,
                    settings=_settings(run),
                )
            )
        except ValueError as exc:
            raise DataError(str(path), protocol, f"cannot make a leaderboard result: {exc}") from exc
    return results


def _scale(suite_name: str) -> str:
    """``mini`` for suites on the generated mini world (the suite registry knows; the name prefix otherwise)."""
    if suite_name in SUITES:
        return "mini" if SUITES.get(suite_name).mini else "full"
    return "mini" if suite_name.startswith("mini-") else "full"


def add_suite_run(
    run_dir: str | os.PathLike,
    model_label: str | None = None,
    results_dir: str | os.PathLike | None = None,
    **kwargs,
) -> list[Path]:
    """File a suite run into ``results_dir`` (default ``runs/leaderboard/results``); returns the written paths."""
    return [add_result(r, results_dir) for r in results_from_run(run_dir, model_label, **kwargs)]
