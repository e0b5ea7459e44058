"""Evaluate a detector on a suite: predict (or reuse cached predictions), score, aggregate, write.

Outputs in ``out_dir``: ``results.json`` (suite manifest + version, model identity, the model's own
provenance record when it offers one, git hash, every metric named by its protocol, per-member rows,
the recomputed aggregate), ``results.md``, one ``<member>-<protocol>.csv`` per-category table per
member and protocol, and the one-line summary.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from detclip_bench import dist
from detclip_bench.adapters.base import Detector
from detclip_bench.io import atomic_path, atomic_write_json, atomic_write_text
from detclip_bench.metrics import CocoEvaluator, EvalResult, LvisEvaluator
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.suites.predict import PredictionArrays, predict_target
from detclip_bench.suites.suite import EvalTarget, Suite, member_file_stem

__all__ = ["SuiteResult", "evaluate_suite", "score_target"]

log = logging.getLogger("detclip_bench.suites")


@dataclass
class SuiteResult:
    suite: Suite
    model: str
    identity: str
    members: dict[str, dict[str, EvalResult]] = field(default_factory=dict)  # member -> protocol -> result
    prompts: dict[str, list[str]] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)  # the detector's own record of its weights (model_provenance)

    @property
    def primary(self) -> str:
        return self.suite.metrics[0]

    def aggregate(self) -> dict[str, float]:
        """The suite number(s), recomputed from the member rows (unweighted mean for 'mean' suites)."""
        out: dict[str, float] = {}
        for key in ("AP", "AP50", "AP75", "APr", "APc", "APf"):
            vals = [r[self.primary].metrics[key] for r in self.members.values() if key in r[self.primary].metrics]
            if vals and len(vals) == len(self.members):
                out[key] = sum(vals) / len(vals)
        return out

    def summary_line(self) -> str:
        agg = self.aggregate()
        if self.suite.aggregate == "mean":
            per = " ".join(f"{m.split('/')[-1]}={100 * r[self.primary].metrics['AP']:.1f}" for m, r in self.members.items())
            return f"{self.suite.name} [{self.primary}] {self.model}: Avg AP={100 * agg['AP']:.1f} | {per}"
        parts = [f"AP={100 * agg['AP']:.1f}"]
        if all(k in agg for k in ("APr", "APc", "APf")):
            parts.append(f"({100 * agg['APr']:.1f}/{100 * agg['APc']:.1f}/{100 * agg['APf']:.1f} r/c/f)")
        return f"{self.suite.name} [{self.primary}] {self.model}: " + " ".join(parts)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "model_identity": self.identity,
            **({"model_provenance": self.provenance} if self.provenance else {}),
            **self.suite.manifest(),
            "aggregate": {"protocol": self.primary, "metrics": self.aggregate()},
            "members": {m: {p: r.to_dict() for p, r in res.items()} for m, res in self.members.items()},
            "summary": self.summary_line(),
        }

    def to_markdown(self) -> str:
        lines = [f"# {self.suite.name} (v{self.suite.version}) — {self.model}", "", self.suite.description, "",
                 f"**{self.summary_line()}**", ""]
        keys = ["AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"]
        for protocol in self.suite.metrics:
            shown = [k for k in keys if any(k in r[protocol].metrics for r in self.members.values())]
            lines += [f"## {protocol}", "", "| member | " + " | ".join(shown) + " |", "|---|" + "---:|" * len(shown)]
            for m, res in self.members.items():
                met = res[protocol].metrics
                lines.append(f"| {m} | " + " | ".join(_pct(met.get(k)) for k in shown) + " |")
            lines.append("")
        return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "–" if v is None or v < 0 or math.isnan(v) else f"{100 * v:.1f}"


def _git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def score_target(suite: Suite, target: EvalTarget, arrays: PredictionArrays,
                 protocols: tuple[str, ...] | None = None) -> dict[str, EvalResult]:
    """Score one target's predictions under every protocol the suite reports (or only ``protocols``)."""
    results: dict[str, EvalResult] = {}
    for protocol in protocols or suite.metrics:
        gt = GroundTruth.cached(target.annotations, lvis=protocol != "coco")
        if protocol == "coco":
            ev = CocoEvaluator(gt, max_dets_per_image=suite.max_dets_per_image)
        else:
            ev = LvisEvaluator(gt, protocol=protocol.removeprefix("lvis-"),
                               topk_per_category=suite.topk_per_category, max_dets_per_image=suite.max_dets_per_image)
        ev.update(arrays.image_ids, arrays.boxes, arrays.scores, arrays.category_ids)
        results[protocol] = ev.compute()
    return results


def evaluate_suite(
    detector: Detector,
    suite: Suite,
    data_root: Path,
    *,
    out_dir: Path | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 4,
    split: str | None = None,
    progress: bool = True,
) -> SuiteResult | None:
    """Run ``detector`` on every member of ``suite``; returns the result on rank 0 (None elsewhere)."""
    suite.check_files(data_root, (split,))
    result = SuiteResult(suite, detector.name, detector.identity(), provenance=model_provenance(detector))
    for target in suite.targets(data_root, split):
        arrays, prompts = predict_target(detector, suite, target, cache_dir=cache_dir, batch_size=batch_size,
                                         progress=progress)
        if not dist.is_main_process():
            continue
        result.prompts[target.member] = prompts
        result.members[target.member] = score_target(suite, target, arrays)
        log.info("%s", " | ".join(f"{target.member}: {r.summary_line()}" for r in result.members[target.member].values()))
    if not dist.is_main_process():
        return None
    if out_dir is not None:
        write_results(result, out_dir)
    return result


def model_provenance(detector: Detector) -> dict:
    """A detector's optional ``provenance()`` dict (e.g. which towers started from random weights), else {}.

    Optional and duck-typed so the core never needs to know a model's package.
    """
    hook = getattr(detector, "provenance", None)
    return dict(hook()) if callable(hook) else {}


def run_info() -> dict:
    """What changes between two runs of the same evaluation; kept out of results.json so that file is reproducible."""
    return {"git_hash": _git_hash(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def write_results(result: SuiteResult, out_dir: Path) -> None:
    """results.json is byte-identical for the same model, suite and data; run_info.json says when and from what code."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "results.json", result.to_dict())
    atomic_write_json(out_dir / "run_info.json", run_info())
    atomic_write_json(out_dir / "prompts.json", result.prompts)
    atomic_write_text(out_dir / "results.md", result.to_markdown())
    for member, res in result.members.items():
        for protocol, r in res.items():
            name = member_file_stem(member)
            with atomic_path(out_dir / f"{name}-{protocol}.csv") as tmp:
                r.to_dataframe().to_csv(tmp)
