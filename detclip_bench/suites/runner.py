"""Evaluate a detector on a suite: predict (or reuse cached predictions), score, aggregate, write.

Every evaluation (zero-shot here, fine-tuned in :mod:`detclip_bench.suites.finetune_protocol`) writes the same
run folder: ``results.json`` (suite manifest + version, setting, model identity, the model's own
provenance record when it offers one, every metric named by its protocol, per-member rows, the
recomputed aggregate), ``run_info.json``, ``prompts.json``, ``results.md``, one
``<member>-<protocol>.csv`` per-category table per member and protocol, and ``predictions/``.
Leaderboards and ``analyze`` read only these files; the prediction cache is an optimisation.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from detclip_bench import dist
from detclip_bench.adapters.base import Detector, model_provenance
from detclip_bench.io import atomic_path, atomic_write_json, atomic_write_text, shared_json_reads
from detclip_bench.metrics import EvalResult, canonical_protocol, make_evaluator
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.metrics.intervals import bootstrap_pool, member_mean, seed_offset
from detclip_bench.predict.arrays import PredictionArrays
from detclip_bench.predict.loop import EXIF_TRANSPOSE
from detclip_bench.provenance import device_description, git_hash, library_versions
from detclip_bench.suites.predictions import predict_target
from detclip_bench.suites.suite import EvalTarget, Setting, Suite, member_file_stem

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "PREDICTIONS_DIR",
    "Bootstrap",
    "SuiteResult",
    "evaluate_suite",
    "evaluate_target",
    "fed_evaluator",
    "member_seed",
    "model_provenance",
    "open_for_scoring",
    "predictions_path",
    "score_target",
    "write_results",
]

PREDICTIONS_DIR = "predictions"
#: image resamples `eval` and `finetune` draw by default. Their cost is a fixed part (reading the engine's
#: per-detection matches once, ~2 ms per image at LVIS-minival size) plus ~10 ms per image per 1,000 replicates
#: on 2 cores (benchmarks/results/bootstrap_bench.md, bootstrap_share*.md); 200 keeps a full-size evaluation's
#: added time near 10 % where the model takes ~25 ms or more per image, and still places each 95 % bound on
#: 5 replicates. `compare` and the reproduction's paired report draw 1,000; `--bootstrap N` sets it, 0 turns it off.
DEFAULT_BOOTSTRAP = 200

log = logging.getLogger("detclip_bench.suites")


@dataclass(frozen=True)
class Bootstrap:
    """Image-bootstrap intervals beside every AP: ``replicates`` resamples of each member's images, member i
    drawn with seed ``seed + i`` (so two runs of one suite draw the same images: their difference is paired)."""

    replicates: int = DEFAULT_BOOTSTRAP
    seed: int = 0

    def __post_init__(self) -> None:
        if self.replicates < 1:
            raise ValueError(f"a bootstrap needs at least 1 replicate, got {self.replicates}")

    def record(self) -> dict:
        return {"replicates": self.replicates, "seed": self.seed, "member_seeds": "seed + member index"}


@dataclass
class SuiteResult:
    suite: Suite
    model: str
    identity: str
    members: dict[str, dict[str, EvalResult]] = field(default_factory=dict)  # member -> protocol -> result
    prompts: dict[str, list[str]] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)  # the detector's own record of its weights (model_provenance)
    finetune: dict[str, dict] = field(default_factory=dict)  # member -> how its weights were fine-tuned
    splits: dict[str, str] = field(default_factory=dict)  # member -> the split that was scored
    # fine-tuning only: zero-shot AP on a held-out suite before and after (what fine-tuning costs elsewhere)
    held_out: dict = field(default_factory=dict)
    # member -> the passes the model's prompts took (models that split a vocabulary, e.g. Grounding DINO)
    prompt_plans: dict[str, object] = field(default_factory=dict)
    bootstrap: Bootstrap | None = None  # how the intervals were drawn; None: no intervals

    @property
    def primary(self) -> str:
        return self.suite.metrics[0]

    @property
    def setting(self) -> Setting:
        """``"zero-shot"``: the model as given; ``"fine-tuned"``: weights trained on the suite's train split(s)
        first. The suite's own: :func:`evaluate_suite` and ``finetune_suite`` score a suite in their setting."""
        return self.suite.setting

    def record(self, member: str, scored: tuple[dict[str, EvalResult], list[str]], split: str) -> None:
        """One member's results and prompts (what :func:`evaluate_target` returns) and the split it scored."""
        self.members[member], self.prompts[member] = scored
        self.splits[member] = split

    def aggregate(self) -> dict[str, float]:
        """The suite number(s), recomputed from the member rows (unweighted mean for 'mean' suites)."""
        out: dict[str, float] = {}
        for key in ("AP", "AP50", "AP75", "APr", "APc", "APf"):
            vals = [r[self.primary].metrics[key] for r in self.members.values() if key in r[self.primary].metrics]
            if vals and len(vals) == len(self.members):
                out[key] = sum(vals) / len(vals)
        return out

    def aggregate_intervals(self) -> dict[str, dict]:
        """Intervals of :meth:`aggregate`'s numbers: a single member's own, or for a mean over members the
        mean of the members' replicates (each member resampled within itself). {} without a bootstrap."""
        results = [r[self.primary] for r in self.members.values()]
        if not results or any(r.intervals is None for r in results):
            return {}
        agg = self.aggregate()
        if len(results) == 1:
            return {k: v for k, v in results[0].intervals.items() if k in agg}
        out = {}
        for key, point in agg.items():
            if any(r.replicates is None or key not in r.replicates for r in results):
                continue
            pooled = member_mean([r.replicates[key] for r in results])
            if pooled is not None:
                out[key] = {"point": point, **pooled}
        return out

    def model_label(self) -> str:
        """Whose numbers these are: the model as given, or, fine-tuned, the fine-tuned weights (their folder, or
        how many folders) and the start they came from, never the start alone: its AP is another number."""
        if self.setting != "fine-tuned":
            return self.model
        dirs = [str(f["model"]) for f in self.finetune.values() if f.get("model")]
        if len(dirs) == 1:
            return f"{dirs[0]} (fine-tuned from {self.model})"
        if dirs:
            return f"{len(dirs)} models fine-tuned from {self.model} (one per member, <member>/model)"
        return f"fine-tuned from {self.model}"

    def summary_line(self) -> str:
        agg = self.aggregate()
        label = self.model_label()
        if self.suite.aggregate == "mean":
            per = " ".join(
                f"{m.split('/')[-1]}={100 * r[self.primary].metrics['AP']:.1f}" for m, r in self.members.items()
            )
            avg = f"Avg AP={100 * agg['AP']:.1f}{_interval(self.aggregate_intervals().get('AP'), ' ')}"
            return f"{self.suite.name} [{self.primary}] {label}: {avg} | {per}"
        parts = [f"AP={100 * agg['AP']:.1f}{_interval(self.aggregate_intervals().get('AP'), ' ')}"]
        if all(k in agg for k in ("APr", "APc", "APf")):
            parts.append(f"({100 * agg['APr']:.1f}/{100 * agg['APc']:.1f}/{100 * agg['APf']:.1f} r/c/f)")
        return f"{self.suite.name} [{self.primary}] {label}: " + " ".join(parts)

    def to_dict(self) -> dict:
        """``results.json``: the model, the suite's manifest, then the numbers.

        The manifest's ``"members"`` (each member's split and files) gives its place to the members' numbers (the
        scored splits are under ``"splits"``); any other key the result adds must be new to the manifest or agree
        with it: a clash raises instead of quietly overwriting how the number was produced.
        """
        manifest = self.suite.manifest()
        manifest["members"] = {m: {p: r.to_dict() for p, r in res.items()} for m, res in self.members.items()}
        head = {
            "model": self.model,
            "model_identity": self.identity,
            **({"model_provenance": self.provenance} if self.provenance else {}),
        }
        tail = {
            "setting": self.setting,
            "aggregate": {
                "protocol": self.primary,
                "metrics": self.aggregate(),
                **({"intervals": self.aggregate_intervals()} if self.bootstrap else {}),
            },
            **({"bootstrap": self.bootstrap.record()} if self.bootstrap else {}),
            "splits": self.splits,
            **({"finetune": self.finetune} if self.finetune else {}),
            **({"held_out": self.held_out} if self.held_out else {}),
            "summary": self.summary_line(),
        }
        own = {**head, **tail}
        clash = sorted(k for k in own.keys() & manifest.keys() if own[k] != manifest[k])
        if clash:
            raise ValueError(
                f"{self.suite.name}: the result's {clash} would overwrite the suite manifest's "
                f"({', '.join(f'{k}: {manifest[k]!r} vs {own[k]!r}' for k in clash)})"
            )
        return {**head, **manifest, **tail}

    def to_markdown(self) -> str:
        lines = [
            f"# {self.suite.name} (v{self.suite.version}) — {self.model_label()} ({self.setting})",
            "",
            self.suite.description,
            "",
            f"**{self.summary_line()}**",
            "",
        ]
        keys = ["AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"]
        for protocol in self.suite.metrics:
            shown = [k for k in keys if any(k in r[protocol].metrics for r in self.members.values())]
            lines += [f"## {protocol}", "", "| member | " + " | ".join(shown) + " |", "|---|" + "---:|" * len(shown)]
            for m, res in self.members.items():
                met, iv = res[protocol].metrics, res[protocol].intervals or {}
                lines.append(
                    f"| {m} | " + " | ".join(_pct(met.get(k)) + _interval(iv.get(k), " ") for k in shown) + " |"
                )
            if protocol == self.primary and self.suite.aggregate == "mean":
                agg, iv = self.aggregate(), self.aggregate_intervals()
                cells = [(_pct(agg[k]) + _interval(iv.get(k), " ")) if k in agg else "" for k in shown]
                lines.append("| **average** | " + " | ".join(cells) + " |")
            lines.append("")
            notes = [f"- {m}: {w}" for m, res in self.members.items() for w in res[protocol].warnings]
            if notes:
                lines += ["Notes from the evaluator:", "", *notes, ""]
        if self.bootstrap:
            lines += [
                f"[lo, hi]: 95% percentile bootstrap over each member's images ({self.bootstrap.replicates} "
                f"resamples, seed {self.bootstrap.seed} + member index); the spread from drawing another image set "
                "like this one, not another dataset or training run (docs/eval.md §7).",
                "",
            ]
        if self.held_out:
            lines += self._held_out_markdown()
        return "\n".join(lines)

    def _held_out_markdown(self) -> list[str]:
        """The held-out zero-shot AP before and after fine-tuning (results.json's ``held_out``), as a table."""
        held = self.held_out
        start = held.get("start_ap")
        lines = [
            f"## held-out: zero-shot {held['suite']} (v{held.get('version', '?')}) [{held['protocol']}]",
            "",
            "What fine-tuning keeps of the open vocabulary: the start model's AP and each fine-tuned model's.",
            "",
            "| weights | AP | change |",
            "|---|---:|---:|",
            f"| start: {self.model} | {_pct(start)} | |",
        ]
        for member, ap in held.get("members", {}).items():
            change = "–" if start is None or ap is None else f"{100 * (ap - start):+.1f}"
            lines.append(f"| fine-tuned on {member} | {_pct(ap)} | {change} |")
        lines.append("")
        return lines


def _pct(v: float | None) -> str:
    return "–" if v is None or v < 0 or math.isnan(v) else f"{100 * v:.1f}"


def _interval(entry: dict | None, prefix: str = "") -> str:
    """``[lo, hi]`` in percent from an interval entry, else empty."""
    if not entry or entry.get("interval") is None:
        return ""
    lo, hi = entry["interval"]
    return f"{prefix}[{100 * lo:.1f}, {100 * hi:.1f}]"


def _log_notes(suite: Suite, target: EvalTarget, result: EvalResult) -> None:
    """Say each evaluator note once, in the log; it is also in results.md/json beside the AP it concerns.

    On a mini suite the notes are expected (a 100-image split cannot fill Fixed AP's 10,000-per-category
    pool), so they are logged as info unless the model returned no detections at all."""
    loud = not suite.mini or result.num_detections_evaluated == 0
    for note in result.warnings:
        where = suite.name if target.member == suite.name else f"{suite.name} {target.member}"
        log.log(logging.WARNING if loud else logging.INFO, "%s [%s]: %s", where, result.protocol, note)


def open_for_scoring(suite: Suite, target: EvalTarget, protocols: tuple[str, ...] | None = None):
    """``target``'s dataset, with (rank 0) the ground truth :func:`score_target` reads loaded from the same parse
    of the annotation file: the loader reads it only to build its index, and both happen before the model runs,
    so the parsed JSON is let go before inference (:func:`detclip_bench.io.shared_json_reads`)."""
    with shared_json_reads():
        dataset = target.open()
        if dist.is_main_process():
            for protocol in protocols or suite.metrics:
                GroundTruth.cached(target.annotations, lvis=canonical_protocol(protocol) != "coco")
    return dataset


def fed_evaluator(suite: Suite, target: EvalTarget, arrays: PredictionArrays, protocol: str, *, for_bootstrap: bool):
    """The evaluator a suite scores ``target`` with under ``protocol``, fed with ``arrays``; ``for_bootstrap``
    holds the deeper Fixed-AP pool that image resamples need (the scores are the same)."""
    gt = GroundTruth.cached(target.annotations, lvis=protocol != "coco")
    budget = suite.evaluator_budget(protocol)
    pool = bootstrap_pool(protocol, budget.get("topk_per_category")) if for_bootstrap else None
    ev = make_evaluator(gt, protocol, **budget, pool_per_category=pool)
    ev.update(arrays.image_ids, arrays.boxes, arrays.scores, arrays.category_ids)
    return ev


def member_seed(suite: Suite, member: str, seed: int) -> int:
    """The resampling seed of one member: ``seed`` + its index, so every run of the suite draws the same images."""
    return seed_offset(seed, [m.name for m in suite.members].index(member))


def score_target(
    suite: Suite,
    target: EvalTarget,
    arrays: PredictionArrays,
    protocols: tuple[str, ...] | None = None,
    *,
    bootstrap: Bootstrap | None = None,
) -> dict[str, EvalResult]:
    """Score one target's predictions under every protocol the suite reports (or only ``protocols``); with
    ``bootstrap``, each result carries its intervals (and, in memory, the replicates a suite average needs)."""
    results: dict[str, EvalResult] = {}
    for protocol in protocols or suite.metrics:
        protocol = canonical_protocol(protocol)
        ev = fed_evaluator(suite, target, arrays, protocol, for_bootstrap=bootstrap is not None)
        with warnings.catch_warnings():  # the evaluator's notes go into the results and one log line, not a trace
            warnings.simplefilter("ignore", UserWarning)
            result = ev.compute()
        _log_notes(suite, target, result)
        if bootstrap is not None:
            from detclip_bench.metrics.bootstrap import bootstrap_ap

            entries = bootstrap_ap(
                ev,
                n_replicates=bootstrap.replicates,
                seed=member_seed(suite, target.member, bootstrap.seed),
                return_replicates=True,
            )
            result.replicates = {k: e.pop("replicates") for k, e in entries.items()}
            result.intervals = entries
        results[protocol] = result
    return results


def evaluate_target(
    detector: Detector,
    suite: Suite,
    target: EvalTarget,
    *,
    out_dir: Path | None,
    cache_dir: Path | None,
    batch_size: int,
    progress: bool,
    bootstrap: Bootstrap | None = None,
    workers: int | None = None,
) -> tuple[dict[str, EvalResult], list[str]] | None:
    """Predict ``target`` (every rank its shard), keep the predictions in ``out_dir`` and score them (rank 0).

    Returns (protocol → result, prompts) on rank 0 and None elsewhere.
    """
    arrays, prompts = predict_target(
        detector,
        suite,
        target,
        cache_dir=cache_dir,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
        dataset=open_for_scoring(suite, target),
        keep=predictions_path(out_dir, target) if out_dir is not None else None,
    )
    if not dist.is_main_process():
        return None
    results = score_target(suite, target, arrays, bootstrap=bootstrap)
    log.info("%s", " | ".join(f"{target.member}: {r.summary_line()}" for r in results.values()))
    return results, prompts


def evaluate_suite(
    detector: Detector,
    suite: Suite,
    data_root: Path,
    *,
    out_dir: Path | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 4,
    workers: int | None = None,
    split: str | None = None,
    progress: bool = True,
    bootstrap: Bootstrap | None = None,
) -> SuiteResult | None:
    """Run ``detector`` zero-shot on every member of ``suite``; returns the result on rank 0 (None elsewhere).

    The result is zero-shot whatever the suite's setting (a fine-tuning suite's eval split scored as given).

    With ``out_dir``, writes the results files and ``predictions/`` (see :func:`write_results`); ``cache_dir``
    only saves re-running the model. ``bootstrap``: intervals beside every AP (None: point estimates only).
    ``workers``: DataLoader workers reading and preparing the images ahead of the model (None: automatic).
    """
    suite.check_files(data_root, (split,))
    zero_shot = suite if suite.setting == "zero-shot" else dataclasses.replace(suite, setting="zero-shot")
    result = SuiteResult(
        zero_shot, detector.name, detector.identity(), provenance=model_provenance(detector), bootstrap=bootstrap
    )
    for target in suite.targets(data_root, split):
        scored = evaluate_target(
            detector,
            suite,
            target,
            out_dir=out_dir,
            cache_dir=cache_dir,
            batch_size=batch_size,
            workers=workers,
            progress=progress,
            bootstrap=bootstrap,
        )
        if scored is not None:
            result.record(target.member, scored, target.split)
            plan = prompt_plan(detector, scored[1])
            if plan is not None:
                result.prompt_plans[target.member] = plan
    if not dist.is_main_process():
        return None
    if out_dir is not None:
        write_results(result, out_dir)
    return result


def prompt_plan(detector: Detector, prompts: list[str]) -> object | None:
    """A detector's optional ``prompt_plan(prompts)`` (how it split the vocabulary into passes), else None."""
    hook = getattr(detector, "prompt_plan", None)
    return hook(prompts) if callable(hook) else None


def run_info() -> dict:
    """What changes between two runs of the same evaluation; kept out of results.json so that file is reproducible."""
    return {
        "git_hash": git_hash(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "device": device_description(),
        "exif_transpose": EXIF_TRANSPOSE,  # images were turned upright by their EXIF Orientation before inference
    }


def predictions_path(out_dir: Path, target: EvalTarget) -> Path:
    """Where a run keeps one target's predictions: ``predictions/<member>-<split>.npz`` (see PredictionArrays)."""
    return out_dir / PREDICTIONS_DIR / f"{member_file_stem(target.member)}-{target.split}.npz"


def write_results(result: SuiteResult, out_dir: Path) -> None:
    """Every evaluation, zero-shot or fine-tuned, writes these files; leaderboards and ``analyze`` read only them.

    ``results.json`` is byte-identical for the same model, suite and data; ``run_info.json`` says when and
    from what code; ``prompts.json`` the exact texts; ``results.md`` and one CSV per member and protocol the
    tables; ``predictions/`` (written per target as it is scored) the raw detections.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "results.json", result.to_dict())
    atomic_write_json(out_dir / "run_info.json", run_info())
    atomic_write_json(out_dir / "prompts.json", result.prompts)
    if result.prompt_plans:
        atomic_write_json(out_dir / "prompt_plan.json", result.prompt_plans)
    atomic_write_text(out_dir / "results.md", result.to_markdown())
    for member, res in result.members.items():
        for protocol, r in res.items():
            name = member_file_stem(member)
            with atomic_path(out_dir / f"{name}-{protocol}.csv") as tmp:
                r.to_dataframe().to_csv(tmp)
