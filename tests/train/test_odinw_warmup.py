"""Table 3's auto-step on a tiny ODinW member: the LR reaches its peak before any plateau counter runs.

A 19-image member at batch 32 is 1 iteration per epoch (the sampler tops up the last batch), so the
paper's 500-iteration warm-up would outlast the 250-epoch budget. Simulated with the recipe's own
schedule, scheduler and stopper (``auto_step_decision`` is what ``finetune`` calls each epoch) and a
validation AP that stops improving after epoch 2, i.e. during the warm-up.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from recipes.table3_odinw_finetune import FULL, MINI
from reference_model.train.early_stop import AutoStepEarlyStop
from reference_model.train.finetune import auto_step_decision
from reference_model.train.schedule import build_scheduler, warmup_iters

IMAGES, BATCH = 19, 32
PEAKS = (4e-5, 4e-7)  # detector and text tower (×0.01)


def _simulate(schedule, early_stop, plateau_after: int = 2):
    iters_per_epoch = math.ceil(IMAGES / BATCH)
    total = iters_per_epoch * schedule.epochs
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in PEAKS]
    opt = torch.optim.AdamW([{"params": [p], "lr": lr} for p, lr in zip(params, PEAKS, strict=True)])
    sched = build_scheduler(opt, schedule, total, min_lr=early_stop.min_lr)
    stopper = AutoStepEarlyStop(early_stop, PEAKS)
    lrs, decisions = [], []
    for epoch in range(schedule.epochs):
        for _ in range(iters_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        ap = 0.1 * min(epoch, plateau_after)  # no gain after epoch 2
        decisions.append(auto_step_decision(sched, stopper, ap))
        if decisions[-1].stop:
            break
    return lrs, decisions, warmup_iters(schedule, total)


def test_tiny_member_reaches_the_peak_lr_and_stops_only_after_t1_t2_at_the_floor():
    lrs, decisions, warm = _simulate(FULL.schedule, FULL.early_stop)
    t1, t2, floor = FULL.early_stop.t1, FULL.early_stop.t2, FULL.early_stop.min_lr
    assert warm == 25  # 500 capped at 10 % of 250 one-iteration epochs
    assert max(lrs) == pytest.approx(PEAKS[0])  # the peak is reached ...
    assert lrs.index(max(lrs)) == warm  # ... at the first iteration after the warm-up
    warming = [d.epoch for d in decisions if d.warming_up]
    assert warming == list(range(warm - 1))  # evals before the peak count for the best AP only
    assert not any(d.decayed or d.stop for d in decisions if d.warming_up)
    decays = [d.epoch for d in decisions if d.decayed]
    first_counted = warm - 1
    # t1 stale evals after the warm-up, then every t1 until the floor (4e-5 → 4e-9 clamps at 1e-8)
    assert decays == [first_counted + t1 - 1 + i * t1 for i in range(4)]
    stop = decisions[-1]
    assert stop.stop and stop.epoch == decays[-1] + t2  # t2 stale evals *at* the floor, then exit
    assert all(lr == pytest.approx(floor) for lr in stop.lrs)
    assert stop.epoch < FULL.schedule.epochs and lrs[-1] == pytest.approx(floor)


def test_counters_wait_for_the_warmup_however_long_it_is():
    """Uncapped, the warm-up fills the whole 250-iteration budget: no decay and no exit may come from evals
    taken below the peak LR (before, a plateau during it exited at epoch 31 with the LR below 1e-6)."""
    uncapped = replace(FULL.schedule, warmup_max_share=1.0)
    lrs, decisions, warm = _simulate(uncapped, FULL.early_stop)
    assert warm == 250 and max(lrs) < PEAKS[0] and len(decisions) == 250
    assert not any(d.decayed or d.stop for d in decisions)


def test_the_mini_recipe_keeps_its_warmup():
    assert warmup_iters(MINI.schedule, 36) == 5  # 24 images, batch 8, 12 epochs: unchanged
