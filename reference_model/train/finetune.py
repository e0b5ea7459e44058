"""Fine-tuning: LVIS (Table 2, cosine, fixed epochs) and ODinW13 (Table 3, per-dataset early stop).

ODinW protocol (appendix B + eval.md §4): for every member dataset, train with the auto-step
schedule, evaluate on the validation split (``mini_val`` where the suite says so) after every
epoch through ``evaluate_val(model) -> AP``, keep the best-val checkpoint (``checkpoints/best``),
stop by :class:`AutoStepEarlyStop` or at max epochs, then reload the best weights. The same
hyper-parameters are used for all members. Scoring the test split and averaging the members is the
suite's job (:func:`detclip_bench.suites.finetune_protocol.finetune_suite`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from detclip_bench.dist import DistContext
from detclip_bench.io import atomic_write_json
from reference_model.train.checkpoint import load_checkpoint
from reference_model.train.config import TrainConfig
from reference_model.train.early_stop import AutoStepEarlyStop, EvalDecision
from reference_model.train.engine import Trainer
from reference_model.train.loader import Collator, StepBatch
from reference_model.train.schedule import in_warmup, set_decay

__all__ = ["FinetuneResult", "StepTimeEstimate", "auto_step_decision", "finetune", "format_duration"]

log = logging.getLogger("detclip_bench.train")

Evaluate = Callable[[nn.Module], float]


def format_duration(seconds: float) -> str:
    """``42 s``, ``17 min``, ``5.3 h``, ``12.4 days``: a duration a person reads at a glance."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass
class StepTimeEstimate:
    """How long a run will take, told early: after ``measure`` steps past the first (which pays one-off costs),
    total steps × the measured seconds per step, logged once. A full recipe started on a CPU should say it needs
    days within a minute, not at the end of its first epoch.

    ``what`` names the run in the message; ``upper_bound``: early stopping may end the run sooner; ``clock``
    is swappable so a test can stub the step time.
    """

    total_steps: int
    what: str
    measure: int = 5
    upper_bound: bool = False
    clock: Callable[[], float] = time.perf_counter
    seconds_per_step: float | None = None
    _marks: list[float] = field(default_factory=list)

    def tick(self) -> str | None:
        """Call after every step; returns (and logs) the estimate on the step it becomes known, else None."""
        if self.seconds_per_step is not None or self.measure < 1:
            return None
        self._marks.append(self.clock())
        if len(self._marks) <= self.measure:
            return None
        self.seconds_per_step = (self._marks[-1] - self._marks[0]) / self.measure
        total = self.total_steps * self.seconds_per_step
        bound = (
            "at most (early stopping may end it sooner), plus a val evaluation after every epoch"
            if self.upper_bound
            else "for the training steps"
        )
        message = (
            f"{self.what}: {self.seconds_per_step:.2f} s per step (measured over steps 2-{self.measure + 1}) "
            f"x {self.total_steps} steps = about {format_duration(total)} {bound}"
        )
        log.warning(message)
        return message


class _TimedTrainer(Trainer):
    """A :class:`Trainer` that feeds every finished step to a :class:`StepTimeEstimate` (main rank only)."""

    estimate: StepTimeEstimate | None = None

    def _log(self, batch: StepBatch, losses: dict[str, float], lrs: dict[str, float], seconds: float) -> None:
        super()._log(batch, losses, lrs, seconds)
        if self.estimate is not None and self.ctx.is_main:
            self.estimate.tick()


@dataclass
class FinetuneResult:
    """How one member's weights were chosen (``best_val_ap`` NaN and ``best_epoch`` the last without a val split)."""

    member: str
    best_val_ap: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    num_decays: int
    history: list[dict[str, Any]] = field(default_factory=list)
    init_from: str = ""  # the checkpoint fine-tuning started from (cfg.model.init_from)


def auto_step_decision(scheduler, stopper: AutoStepEarlyStop, ap: float) -> EvalDecision:
    """One epoch-end eval of the auto-step rule: counted only once the warm-up is over, decay applied."""
    decision = stopper.step(ap, warming_up=in_warmup(scheduler))
    if decision.decayed:
        set_decay(scheduler, decision.decay)
    return decision


def _evaluate(model: nn.Module, fn: Evaluate) -> float:
    was_training = model.training
    model.eval()
    try:
        return float(fn(model))
    finally:
        model.train(was_training)


def finetune(
    cfg: TrainConfig,
    model: nn.Module,
    train_dataset: Any,
    out_dir: str | Path,
    *,
    member: str,
    evaluate_val: Evaluate | None,
    collate: Collator | None = None,
    ctx: DistContext | None = None,
    resume: bool = False,
    progress: bool = True,
    estimate_after: int = 0,
) -> FinetuneResult:
    """Fine-tune one dataset; ``auto_step`` recipes need ``evaluate_val`` (it drives the early stop).

    ``estimate_after``: log the run's expected duration once that many steps past the first are timed (0: never;
    ``finetune`` asks for it when a full recipe runs on a CPU). On return ``model`` holds the best-val weights
    (``auto_step``) or the last ones.
    """
    if len(cfg.data) != 1:
        raise ValueError(f"fine-tuning takes one data source, {cfg.name} has {len(cfg.data)}")
    auto = cfg.schedule.kind == "auto_step"
    if auto and (evaluate_val is None or cfg.early_stop is None):
        raise ValueError("auto_step fine-tuning needs evaluate_val and an early_stop config")
    history: list[dict[str, Any]] = []
    stopper: AutoStepEarlyStop | None = None

    def on_epoch_end(trainer: Trainer, epoch: int) -> bool:
        ap = _evaluate(trainer.model, evaluate_val)
        decision = auto_step_decision(trainer.scheduler, stopper, ap)
        if decision.improved:
            trainer.save("best", point_latest=False)
        history.append(
            {
                "epoch": epoch,
                "val_ap": ap,
                "improved": decision.improved,
                "decayed": decision.decayed,
                "stop": decision.stop,
                "warming_up": decision.warming_up,
                "lrs": list(decision.lrs),
            }
        )
        return decision.stop

    trainer = _TimedTrainer(
        cfg,
        model,
        [train_dataset],
        out_dir,
        ctx=ctx,
        collate=collate,
        on_epoch_end=on_epoch_end if auto else None,
        progress=progress,
    )
    if estimate_after > 0:
        trainer.estimate = StepTimeEstimate(
            total_steps=trainer.total_steps,
            what=f"{cfg.name} on {member}",
            measure=estimate_after,
            upper_bound=auto,
        )
    if auto:
        peaks = [g["initial_lr"] for g in trainer.optimizer.param_groups]
        stopper = AutoStepEarlyStop(cfg.early_stop, peaks)
        trainer.extra_state["early_stop"] = stopper
    summary = trainer.fit(resume=resume)

    if auto and stopper.best_epoch >= 0:
        load_checkpoint(trainer.ckpt_dir / "best", trainer.model, map_location=trainer.ctx.device)
    result = FinetuneResult(
        member=member,
        best_val_ap=stopper.best if auto else math.nan,
        best_epoch=stopper.best_epoch if auto else summary["epochs"] - 1,
        epochs_run=summary["epochs"],
        stopped_early=summary["stopped_early"],
        num_decays=stopper.num_decays if auto else 0,
        history=history,
        init_from=cfg.model.init_from,
    )
    if trainer.ctx.is_main:
        atomic_write_json(Path(out_dir) / "finetune_result.json", asdict(result))
    return result
