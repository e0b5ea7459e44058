"""Execute an :class:`~recipes.experiment.Experiment`: pre-train, evaluate, fine-tune, lay out the table.

Everything lands in one output folder::

    OUT/mini_world/                  generated data (mini scale, unless --data-root is given)
    OUT/pretrain/<run>/              training run (checkpoints/, metrics.jsonl, config.json)
    OUT/pretrain/<run>/model/        safetensors + config: ``detclip-bench eval --model`` loads it
    OUT/eval/<run>-zero-shot-<suite>/  a suite run: results.json/.md, per-category CSV, predictions/
    OUT/finetune/<run>-<suite>/      the same files for the fine-tuned weights, and per member its
                                     training run with its model/
    OUT/results/                     one leaderboard result file per number (every protocol scored)
    OUT/<experiment>.md / .json      the paper's table with our rows beside its rows
    OUT/leaderboard/                 leaderboard.md + plots

A finished run (``done.json`` next to ``model/``, with the same config) is reused, and an
interrupted one resumes from its latest checkpoint, so re-running a table only does what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from detclip_bench.adapters.models import load_detector
from detclip_bench.dist import init_distributed
from detclip_bench.io import atomic_write_json, read_json
from detclip_bench.suites import get_suite
from detclip_bench.suites.finetune_protocol import finetune_suite
from detclip_bench.suites.runner import Bootstrap, SuiteResult, evaluate_suite
from leaderboards.results import ToolkitResult
from leaderboards.suite_runs import results_from_run
from recipes.experiment import Experiment, Pretrain
from recipes.paired_intervals import REPLICATES  # the reproduction's evaluations draw as many as its paired report
from recipes.report import Evaluation, ReproductionReport, RunRow
from reference_model.train.build import build_model, open_sources
from reference_model.train.checkpoint import unwrap
from reference_model.train.config import (
    UnknownDataSource,
    apply_overrides,
    config_to_dict,
    locate_data,
    with_data_root,
)
from reference_model.train.engine import Trainer
from reference_model.train.member_trainer import DetCLIPv2MemberTrainer

__all__ = ["Reproduction", "config_digest", "plan_overrides"]

log = logging.getLogger("detclip_bench.reproduce")


def config_digest(cfg) -> str:
    return hashlib.sha256(json.dumps(config_to_dict(cfg), sort_keys=True).encode()).hexdigest()[:16]


def plan_overrides(experiment: Experiment, assignments: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Which ``--set`` assignments apply to which training config, checked before any work starts.

    A ``data.<source>.…`` key applies to the runs that have that source and is skipped for the others;
    every other key applies to every run. A key that applies to no run, an unknown field or a badly
    typed value is an error here, not after the world is generated and the first model scored.
    Keys: pre-training run keys, and ``finetune:<run>`` for fine-tuning configs.
    """
    configs = {run.key: run.config for run in experiment.pretrain}
    configs.update({f"finetune:{f.run}": f.config for f in experiment.finetune})
    plan: dict[str, list[str]] = {key: [] for key in configs}
    for item in assignments:
        applies = []
        for key, cfg in configs.items():
            try:
                apply_overrides(cfg, [item])
            except UnknownDataSource:
                continue
            applies.append(key)
            plan[key].append(item)
        if not applies:
            raise ValueError(
                f"--set {item}: no run of {experiment.name} has that data source (runs: {', '.join(configs)})"
            )
        log.info("--set %s applies to: %s", item, ", ".join(applies))
    return {key: tuple(items) for key, items in plan.items()}


class PeakMemory:
    """Peak memory of a block: CUDA allocator peak on GPU, sampled process RSS growth on CPU."""

    def __init__(self, device) -> None:
        self.device = device
        self.peak_bytes = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        import psutil
        import torch

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        proc, base = psutil.Process(), psutil.Process().memory_info().rss

        def sample() -> None:
            while not self._stop.wait(0.05):
                self.peak_bytes = max(self.peak_bytes, proc.memory_info().rss - base)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.type == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()


class Reproduction:
    def __init__(
        self,
        experiment: Experiment,
        scale: str,
        data_root: Path,
        out: Path,
        *,
        device: str = "auto",
        batch_size: int = 16,
        progress: bool = True,
        run_overrides: dict[str, tuple[str, ...]] | None = None,
        members: list[str] | None = None,
    ) -> None:
        """``run_overrides``: the ``--set`` items per run, from :func:`plan_overrides` (checked before any work);
        ``members`` limits fine-tuning."""
        self.exp, self.scale, self.root, self.out = experiment, scale, Path(data_root), Path(out)
        self.batch_size, self.progress, self.members = batch_size, progress, members
        self.ctx = init_distributed(device)
        self.run_overrides = run_overrides if run_overrides is not None else plan_overrides(experiment, ())
        self.model_dirs: dict[str, Path] = {}
        self.costs: dict[str, dict[str, float]] = {}
        self.results: list[tuple[str, ToolkitResult]] = []  # (run key, leaderboard row), every protocol scored
        self._heldout: list | None = None  # held-out pair batches, collated once

    # ------------------------------------------------------------------ steps

    def pretrain(self, run: Pretrain) -> Path:
        # relative paths as in our layout, else found in GLIP's or mmdetection's layout under the root
        cfg = with_data_root(
            locate_data(apply_overrides(run.config, self.run_overrides[run.key]), str(self.root)), str(self.root)
        )
        run_dir = self.out / "pretrain" / run.key
        done = run_dir / "done.json"
        digest = config_digest(cfg)
        if done.is_file() and read_json(done).get("config_digest") == digest:
            log.info("reusing finished run %s", run_dir)
            self.costs[run.key] = read_json(done)["cost"]
            return run_dir / "model"
        import torch

        torch.manual_seed(cfg.seed)  # paired arms start from the same weights (the seed is the run's)
        model = build_model(cfg)
        t0 = time.perf_counter()
        with PeakMemory(self.ctx.device) as mem:
            trainer = Trainer(cfg, model, open_sources(cfg), run_dir, ctx=self.ctx, progress=self.progress)
            summary = trainer.fit(resume=True)
        seconds = time.perf_counter() - t0
        cost = {
            "train_seconds": round(seconds, 1),
            "peak_memory_gb": round(mem.peak_bytes / 2**30, 3),
            "device": self.ctx.device.type,
            "steps": summary["steps"],
        }
        if self.ctx.is_main:
            unwrap(trainer.final_model).save_pretrained(run_dir / "model")
            atomic_write_json(done, {"config_digest": digest, "cost": cost, "summary": summary})
        self.costs[run.key] = cost
        return run_dir / "model"

    def evaluate(self, run: Pretrain, suite_name: str, model_dir: Path) -> Evaluation | None:
        """Zero-shot ``suite_name`` with the run's weights; the run folder is ``OUT/eval/<run>-zero-shot-<suite>``."""
        suite = get_suite(suite_name)
        detector = load_detector(str(model_dir), device=str(self.ctx.device))
        run_dir = self.out / "eval" / f"{run.key}-zero-shot-{suite_name}"
        result = evaluate_suite(
            detector,
            suite,
            self.root,
            out_dir=run_dir,
            cache_dir=self.out / "cache",
            batch_size=self.batch_size,
            progress=self.progress,
            bootstrap=Bootstrap(REPLICATES),
        )
        return None if result is None else self._record(run, suite_name, run_dir, result)

    def finetune(self, run: Pretrain, suite_name: str, recipe, model_dir: Path) -> Evaluation | None:
        """Fine-tune the run's weights with ``recipe`` on ``suite_name`` (``OUT/finetune/<run>-<suite>``)."""
        suite = get_suite(suite_name)
        cfg = apply_overrides(recipe, self.run_overrides[f"finetune:{run.key}"])
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_from=str(model_dir)))
        run_dir = self.out / "finetune" / f"{run.key}-{suite_name}"
        trainer = DetCLIPv2MemberTrainer(cfg, ctx=self.ctx, progress=self.progress)
        result = finetune_suite(
            trainer,
            suite,
            self.root,
            run_dir,
            model=str(model_dir),
            members=self.members,
            batch_size=self.batch_size,
            progress=self.progress,
            bootstrap=Bootstrap(REPLICATES),
        )
        return None if result is None else self._record(run, suite_name, run_dir, result)

    def training_facts(self, run: Pretrain) -> dict[str, Any]:
        """The run's held-out alignment gauges and training facts (:mod:`recipes.contrastive_gauges`)."""
        from recipes.contrastive_gauges import alignment_gauges, heldout_batches, training_facts
        from reference_model.detclipv2 import DetCLIPv2

        if self._heldout is None:
            self._heldout = heldout_batches(self.root)
        model = DetCLIPv2.from_pretrained(str(self.model_dirs[run.key]))
        facts = training_facts(self.out / "pretrain" / run.key / "metrics.jsonl")
        return {**facts, **alignment_gauges(model, self._heldout)}

    # ------------------------------------------------------------------ bookkeeping

    def _group_ap(self, result) -> dict[str, float]:
        """Mean AP per mini-world vocabulary group (detection / grounding / caption-only), when known."""
        from recipes.paired_intervals import concept_groups

        group = concept_groups(self.root)
        if not group:
            return {}
        rows = [c for member in result.members.values() for c in member[result.primary].categories]
        out: dict[str, list[float]] = {}
        for row in rows:
            if row.name in group and row.ap == row.ap:  # NaN: no GT
                out.setdefault(group[row.name], []).append(row.ap)
        return {g: 100 * sum(v) / len(v) for g, v in sorted(out.items())}

    def _record(self, run: Pretrain, suite_name: str, run_dir: Path, result: SuiteResult) -> Evaluation:
        """File the run folder's leaderboard rows (the same path as ``leaderboard --add-run``) and return the
        table cell: the suite's metrics, per-dataset AP and AP per mini-world concept group, in percent."""
        rows = results_from_run(
            run_dir,
            run.model or self.exp.model,
            backbone=run.backbone or self.exp.backbone,
            pretrain_data=run.pretrain_data,
            note=f"{self.exp.name} run {run.key}"
            + (f" (paper row {run.row})" if run.row else "")
            + (f", training seed {run.seed}" if run.seed is not None else ""),
        )
        self.results.extend((run.key, row) for row in rows)
        # the result's numbers are fractions; the table's, percent
        return Evaluation(
            setting=result.setting,
            suite=suite_name,
            metrics={k: 100 * v for k, v in result.aggregate().items() if v >= 0},
            groups=self._group_ap(result),
            per_dataset=(
                {m: {"AP": 100 * r[result.primary].metrics["AP"]} for m, r in result.members.items()}
                if result.suite.aggregate == "mean"
                else None
            ),
        )

    # ------------------------------------------------------------------ all

    def random_init(self, suite_name: str) -> RunRow:
        """The first run's model before any training step: the floor every trained row must clear."""
        import torch

        first = self.exp.pretrain[0]
        run = dataclasses.replace(first, key="random-init", pretrain_data="none (random init)", row="")
        model_dir = self.out / "pretrain" / run.key / "model"
        if not (model_dir / "config.json").is_file() and self.ctx.is_main:
            torch.manual_seed(first.config.seed)
            build_model(first.config).save_pretrained(model_dir)
        row = RunRow(
            run=run.key,
            row="",
            pretrain_data=run.pretrain_data,
            model=run.model or self.exp.model,
            cost={},
            config=first.config.name,
            random_init=True,
        )
        _add(row, self.evaluate(run, suite_name, model_dir))
        return row

    def run(self) -> ReproductionReport:
        """Every step of the experiment; the report is complete on rank 0 (elsewhere it lacks the evaluations)."""
        rows: dict[str, RunRow] = {}
        if self.exp.random_init_baseline:
            rows["random-init"] = self.random_init(self.exp.random_init_baseline)
        for run in self.exp.pretrain:
            self.model_dirs[run.key] = self.pretrain(run)
            rows[run.key] = RunRow(
                run=run.key,
                row=run.row,
                pretrain_data=run.pretrain_data,
                model=run.model or self.exp.model,
                cost=self.costs[run.key],
                config=run.config.name,
                seed=run.config.seed,
                arm=run.arm,
            )
        if self.exp.contrastive_gauges:
            for run in self.exp.pretrain:
                rows[run.key].training = self.training_facts(run)
        for z in self.exp.zero_shot:
            _add(rows[z.run], self.evaluate(self.exp.run(z.run), z.suite, self.model_dirs[z.run]))
        for f in self.exp.finetune:
            _add(rows[f.run], self.finetune(self.exp.run(f.run), f.suite, f.config, self.model_dirs[f.run]))
        return ReproductionReport(
            experiment=self.exp.name,
            title=self.exp.title,
            scale=self.scale,
            measure_cost=self.exp.measure_cost,
            paper_table=self.exp.paper_table,
            notes=list(self.exp.notes),
            runs=list(rows.values()),
        )


def _add(row: RunRow, evaluation: Evaluation | None) -> None:
    """An evaluation into its run's row (None: not rank 0, which alone scores)."""
    if evaluation is not None:
        row.add(evaluation)
