import math

import numpy as np
import pytest
import torch

from reference_model.train.config import EarlyStopConfig
from reference_model.train.early_stop import AutoStepEarlyStop

TABLE3 = EarlyStopConfig(t1=5, t2=8, factor=0.1, min_lr=1e-8)


def _run(seq, cfg=TABLE3, peaks=(4e-5, 4e-7)):
    stopper = AutoStepEarlyStop(cfg, peaks)
    decisions = []
    for ap in seq:
        d = stopper.step(ap)
        decisions.append(d)
        if d.stop:
            break
    return stopper, decisions


def test_scripted_sequence_every_decay_lr_and_stop_epoch():
    seq = [10, 20, 20, 19, 18, 17, 16]  # e0, e1 improve; e2..e6: five stale evals (a tie is not an improvement)
    seq += [25] + [24] * 5  # e7 improves; e8..e12 stale
    seq += [24] * 5 + [24] * 5  # e13..e17, e18..e22 stale
    seq += [24, 24, 24, 30]  # e23..e25 stale at the floor, e26 improves (resets the exit count)
    seq += [29] * 8 + [50]  # e27..e34 stale -> stop at e34; the 50 is never seen
    stopper, ds = _run(seq)
    assert [d.epoch for d in ds if d.decayed] == [6, 12, 17, 22]
    assert [d.epoch for d in ds if d.improved] == [0, 1, 7, 26]
    assert ds[-1].stop and ds[-1].epoch == 34 and not any(d.stop for d in ds[:-1])
    expected = {5: (4e-5, 4e-7), 6: (4e-6, 4e-8), 12: (4e-7, 1e-8), 17: (4e-8, 1e-8), 22: (1e-8, 1e-8)}
    for epoch, lrs in expected.items():
        assert ds[epoch].lrs == pytest.approx(lrs, rel=1e-12)
    assert stopper.best == 30 and stopper.best_epoch == 26
    # the floor was reached at e22; without the improvement at e26 the exit would be e30
    _, ds2 = _run(seq[:26] + [24] * 10)
    assert ds2[-1].epoch == 30 and ds2[-1].stop


def test_exit_needs_the_floor_not_just_t2_stale_epochs():
    stopper, ds = _run([1.0] + [0.5] * 12)  # 12 stale evals: two decays, floor not reached, no exit
    assert not any(d.stop for d in ds)
    assert stopper.num_decays == 2
    assert ds[-1].lrs == pytest.approx((4e-7, 1e-8))


def test_nan_never_improves():
    _, ds = _run([0.3, math.nan, 0.31])
    assert [d.improved for d in ds] == [True, False, True]


@pytest.mark.parametrize("seed", range(5))
def test_decay_matches_pytorch_reduce_lr_on_plateau_with_patience_t1_minus_1(seed):
    rng = np.random.default_rng(seed)
    seq = np.round(np.cumsum(rng.normal(0.0, 1.0, 120)) / 4, 1).tolist()  # rounded: many ties
    cfg = EarlyStopConfig(t1=5, t2=10_000, factor=0.1, min_lr=1e-8)
    peaks = (4e-5, 4e-7)
    opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": p} for p in peaks])
    oracle = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max", factor=0.1, patience=cfg.t1 - 1, threshold=0.0, threshold_mode="abs", cooldown=0, min_lr=1e-8
    )
    stopper = AutoStepEarlyStop(cfg, peaks)
    for ap in seq:
        ours = stopper.step(ap).lrs
        oracle.step(ap)
        assert ours == pytest.approx(tuple(g["lr"] for g in opt.param_groups), rel=1e-9)


def test_state_round_trip():
    a, _ = _run([1, 2, 2, 2])
    b = AutoStepEarlyStop(TABLE3, (4e-5, 4e-7))
    b.load_state_dict(a.state_dict())
    assert a.step(1.5) == b.step(1.5)
