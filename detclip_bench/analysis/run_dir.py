"""Read back what ``detclip-bench eval`` left in a run directory, plus the suite's ground truth.

Nothing here re-runs a model: predictions come from the run's own output
(``RUN_DIR/predictions/<member>-<split>.npz``, written by every evaluation), per-category AP from
its ``<member>-<protocol>.csv`` tables and the suite numbers from ``results.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detclip_bench.errors import DataError
from detclip_bench.io import read_json
from detclip_bench.predict.arrays import PredictionArrays
from detclip_bench.suites import resolve_data_root
from detclip_bench.suites.custom import suite_of_results
from detclip_bench.suites.runner import PREDICTIONS_DIR, predictions_path
from detclip_bench.suites.suite import EvalTarget, Suite, member_file_stem

__all__ = ["LoadedRun", "MemberRun", "group_by_image", "load_run"]


@dataclass
class MemberRun:
    member: str
    split: str
    target: EvalTarget
    predictions: PredictionArrays
    results: dict[str, dict]  # protocol -> EvalResult.to_dict() as written in results.json
    category_tables: dict  # protocol -> pandas DataFrame (id index; name, frequency, ap, num_gt, num_dets)

    @property
    def lvis(self) -> bool:
        return self.target.loader_format == "lvis"


@dataclass
class LoadedRun:
    run_dir: Path
    results: dict
    suite: Suite
    data_root: Path
    members: list[MemberRun]

    @property
    def primary(self) -> str:
        return self.results["aggregate"]["protocol"]

    @property
    def identity(self) -> str:
        return str(self.results["model_identity"])


def _read_table(path: Path):
    import pandas as pd

    if not path.is_file():
        raise DataError(str(path), "-", "per-category table missing; re-run `detclip-bench eval` into this folder")
    try:
        return pd.read_csv(path, index_col="id")
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(str(path), "-", f"unreadable per-category table: {exc}") from exc


def load_run(
    run_dir: str | Path, *, suite: str | None = None, data_root: str | Path | None = None, data_map=None
) -> LoadedRun:
    """A run folder with its suite, data root (``data_root``/``data_map`` as ``eval`` takes them) and every
    scored member's predictions and per-category tables."""
    run_dir = Path(run_dir)
    results = read_json(run_dir / "results.json")
    if not isinstance(results, dict) or "suite" not in results or "members" not in results:
        raise DataError(str(run_dir / "results.json"), "-", "not a results.json written by `detclip-bench eval`")
    if suite is not None and suite != results["suite"]:
        raise DataError(
            str(run_dir / "results.json"), "suite", f"this run evaluated suite {results['suite']!r}, not {suite!r}"
        )
    the_suite = suite_of_results(results)
    if str(results.get("version")) != the_suite.version:
        raise DataError(
            str(run_dir / "results.json"),
            "version",
            f"run used {the_suite.name} v{results.get('version')}, installed suite is v{the_suite.version}",
        )
    root = resolve_data_root(the_suite, data_root, data_map)
    members = []
    for target in the_suite.targets(root):
        if target.member not in results["members"]:
            continue
        target = _resolve_split(run_dir, results, the_suite, target, root)
        arrays, _meta = PredictionArrays.load(predictions_path(run_dir, target))
        tables = {
            p: _read_table(run_dir / f"{member_file_stem(target.member)}-{p}.csv")
            for p in results["members"][target.member]
        }
        members.append(
            MemberRun(target.member, target.split, target, arrays, results["members"][target.member], tables)
        )
    if not members:
        raise DataError(str(run_dir / "results.json"), "members", "no member of the suite has results in this run")
    return LoadedRun(run_dir, results, the_suite, root, members)


def _resolve_split(run_dir: Path, results: dict, suite: Suite, target: EvalTarget, root: Path) -> EvalTarget:
    """The member's target at the split the run scored (``splits`` in results.json, else the one predictions file)."""
    member = next(m for m in suite.members if m.name == target.member)
    split = results.get("splits", {}).get(target.member)
    if split is None:
        stem = member_file_stem(target.member)
        found = sorted((run_dir / PREDICTIONS_DIR).glob(f"{stem}-*.npz"))
        splits = [s for s in (p.stem[len(stem) + 1 :] for p in found) if s in member.files]
        split = splits[0] if len(splits) == 1 else None
    resolved = member.target(root, split) if split in member.files else target
    path = predictions_path(run_dir, resolved)
    if not path.is_file():
        raise DataError(
            str(path),
            target.member,
            "no predictions for this member in the run folder; every "
            "`detclip-bench eval`/`finetune` writes them: re-run it with --out pointing at this folder",
        )
    return resolved


def group_by_image(arrays: PredictionArrays) -> dict[int, np.ndarray]:
    """Image id -> row indices of its detections (in cache order)."""
    order = np.argsort(arrays.image_ids, kind="stable")
    ids, starts = np.unique(arrays.image_ids[order], return_index=True)
    if not len(ids):  # no detections at all: np.split would still return one (empty) chunk for zero ids
        return {}
    return {int(i): rows for i, rows in zip(ids.tolist(), np.split(order, starts[1:]), strict=True)}
