"""Fine-tuning says where it starts (the checkpoint, not the variant's packaged towers) and, when asked, how long it
will take after its first steps (issue 27.1 and 27.13). Nothing trains here: ``fit`` is replaced by a stub that
feeds the trainer's per-step hook with a stubbed clock."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from detclip_bench.dist import init_distributed
from detclip_bench.schema import DataKind
from reference_model.train import finetune as ft
from reference_model.train.config import ModelConfig
from reference_model.train.engine import Trainer
from reference_model.train.loader import StepBatch
from tests.train.toy import ToyModel, toy_collate, toy_config, toy_datasets

PACKAGED = {"backbone": "efficientnet-lite0-package", "text": "minilm-package", "random": []}


class SummarisedToy(ToyModel):
    """The toy with DetCLIPv2's ``init_summary`` hook: where its towers first started (the packaged weights)."""

    def init_summary(self) -> dict:
        return dict(PACKAGED)


def one_source_config(init_from: str = ""):
    cfg = toy_config(epochs=3)
    return dataclasses.replace(cfg, data=cfg.data[:1], model=ModelConfig(variant="toy", init_from=init_from))


def _start_line(caplog) -> str:
    return next(r.getMessage() for r in caplog.records if "initial weights" in r.getMessage())


def test_the_start_log_names_the_checkpoint_a_finetuning_run_starts_from(tmp_path, caplog):
    ctx = init_distributed("cpu")
    with caplog.at_level(logging.INFO, logger="detclip_bench.train"):
        Trainer(one_source_config(), SummarisedToy(), toy_datasets()[:1], tmp_path / "a", ctx=ctx, collate=toy_collate)
    fresh = _start_line(caplog)
    assert "checkpoint" not in fresh and "efficientnet-lite0-package" in fresh
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="detclip_bench.train"):
        Trainer(
            one_source_config("runs/t/model"),
            SummarisedToy(),
            toy_datasets()[:1],
            tmp_path / "b",
            ctx=ctx,
            collate=toy_collate,
        )
    line = _start_line(caplog)
    assert "initial weights checkpoint runs/t/model" in line  # the start, named first
    assert line.index("runs/t/model") < line.index("efficientnet-lite0-package")


class FakeClock:
    """Seconds that advance by ``step`` on each reading, so the measured seconds per step is exactly ``step``."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_estimate_is_total_steps_times_the_measured_step_time_and_logged_once(caplog):
    est = ft.StepTimeEstimate(total_steps=5000, what="recipe on widgets", measure=3, clock=FakeClock(2.5))
    with caplog.at_level(logging.WARNING, logger="detclip_bench.train"):
        said = [est.tick() for _ in range(10)]
    assert said[:3] == [None] * 3 and said[4:] == [None] * 6  # after 3 timed steps past the first, once
    assert est.seconds_per_step == pytest.approx(2.5)
    assert "2.50 s per step" in said[3] and "5000 steps" in said[3] and "3.5 h" in said[3]  # 12500 s
    assert [r.getMessage() for r in caplog.records] == [said[3]]
    assert ft.format_duration(40) == "40 s" and ft.format_duration(600) == "10 min"
    assert ft.format_duration(3 * 86400) == "3.0 days"
    upper = ft.StepTimeEstimate(total_steps=10, what="x", measure=1, upper_bound=True, clock=FakeClock(1.0))
    upper.tick()
    assert "at most" in upper.tick()


def test_finetune_stamps_the_start_and_times_its_first_steps(tmp_path, monkeypatch, caplog):
    """``finetune(estimate_after=N)`` hands the trainer an estimate that its per-step hook feeds."""
    ticks: dict = {}

    def fake_fit(self, resume=False):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.estimate.clock = FakeClock(4.0)
        batch = StepBatch(epoch=0, position=0, source="det", kind=DataKind.DETECTION, micro=[])
        for k in range(1, 5):
            self.step = k
            self._log(batch, {"loss": 1.0}, {"all": 0.1}, 0.01)
        ticks["estimate"] = self.estimate
        return {"steps": 4, "epochs": 1, "stopped_early": False, "last_loss": 1.0, "checkpoint": None}

    monkeypatch.setattr(ft._TimedTrainer, "fit", fake_fit)
    cfg = one_source_config("runs/t/model")
    ctx = init_distributed("cpu")
    with caplog.at_level(logging.WARNING, logger="detclip_bench.train"):
        result = ft.finetune(
            cfg,
            SummarisedToy(),
            toy_datasets()[0],
            tmp_path / "m",
            member="widgets",
            evaluate_val=None,
            collate=toy_collate,
            ctx=ctx,
            progress=False,
            estimate_after=3,
        )
    est = ticks["estimate"]
    assert est.seconds_per_step == pytest.approx(4.0) and est.total_steps == 3 * 3  # 3 epochs of 3 steps
    assert any("toy on widgets: 4.00 s per step" in r.getMessage() for r in caplog.records)
    assert result.init_from == "runs/t/model"
    assert json.loads((tmp_path / "m" / "finetune_result.json").read_text())["init_from"] == "runs/t/model"


def test_no_estimate_unless_asked(tmp_path, monkeypatch):
    seen: dict = {}

    def fake_fit(self, resume=False):
        seen["estimate"] = self.estimate
        return {"steps": 0, "epochs": 0, "stopped_early": False, "last_loss": float("nan"), "checkpoint": None}

    monkeypatch.setattr(ft._TimedTrainer, "fit", fake_fit)
    ft.finetune(
        one_source_config("x"),
        SummarisedToy(),
        toy_datasets()[0],
        tmp_path / "m",
        member="w",
        evaluate_val=None,
        collate=toy_collate,
        ctx=init_distributed("cpu"),
        progress=False,
    )
    assert seen["estimate"] is None
