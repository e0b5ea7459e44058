"""The paper's auto-step LR decay and early stop (appendix B, Table 3), not GLIP's.

Rule, with every choice spelled out (``t1=5, t2=8, factor=0.1, min_lr=1e-8`` in Table 3):

* **Improvement test** (one test for both counters): an eval improves iff
  ``ap > best + min_delta`` (strict, absolute; ``min_delta=0``). The first eval always improves.
  A NaN AP never improves. GLIP uses two different tests (relative 1e-4 for decay, ``<`` for
  exit); we use one so the two counters cannot disagree about what "no improvement" means.
* **Decay after t1 epochs without improvement**: on the ``t1``-th consecutive non-improving eval
  every group's LR becomes ``max(lr * factor, min_lr)`` and the counter restarts. In PyTorch
  terms this is ``ReduceLROnPlateau(mode="max", factor=0.1, patience=t1 - 1, threshold=min_delta,
  threshold_mode="abs", cooldown=0, min_lr=1e-8)``: PyTorch decays when ``num_bad_epochs >
  patience``, i.e. on the ``(patience + 1)``-th bad eval, so the paper's "5" is ``patience=4``.
  (GLIP's ``STEP_PATIENCE 5`` would decay on the 6th.) The tests check this against PyTorch.
* **Exit once the LR has reached min_lr and t2 epochs pass without improvement**: "reached" means
  every group's post-warm-up LR equals its floor ``min_lr``. Only evals *after* the floor is
  reached are counted (an improvement resets the count); training stops on the ``t2``-th.
  Counting stale epochs from before the floor would make the exit fire the moment the floor
  is reached (it takes ``4 × t1 = 20`` stale epochs to get 4e-5 down to 1e-8), which would make
  ``t2`` meaningless.
* **Warm-up first** (as GLIP's ``WarmupReduceLROnPlateau``, whose plateau logic is not consulted until
  the warm-up iterations are over): an eval taken while the LR is still warming up records the best AP
  (and its checkpoint) but advances neither counter, so no decay and no exit can happen before the LR
  has once reached its peak. The recipe also caps the warm-up at a share of the run
  (``ScheduleConfig.warmup_max_share``, Table 3: 10 % of the 250-epoch budget), so on a 1-iteration-per-epoch
  set the 500-iteration warm-up becomes 25 iterations instead of outlasting the run.
* **Max epochs** (250) ends training regardless; the caller enforces it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from reference_model.train.config import EarlyStopConfig

__all__ = ["AutoStepEarlyStop", "EvalDecision"]


@dataclass(frozen=True)
class EvalDecision:
    epoch: int
    metric: float
    improved: bool
    decayed: bool
    stop: bool
    decay: float  # the multiplier on every peak LR after this eval (before the floor)
    lrs: tuple[float, ...]  # every group's LR after this eval
    warming_up: bool = False  # taken during the warm-up: counted for the best AP only


class AutoStepEarlyStop:
    def __init__(self, cfg: EarlyStopConfig, peak_lrs: Sequence[float]) -> None:
        if not peak_lrs or min(peak_lrs) <= 0:
            raise ValueError("peak_lrs must be positive")
        self.cfg = cfg
        self.peak_lrs = tuple(float(x) for x in peak_lrs)
        self.best = -math.inf
        self.best_epoch = -1
        self.bad_evals = 0  # consecutive non-improving evals since the last improvement or decay
        self.stale_at_floor = 0  # consecutive non-improving evals while at the floor
        self.num_decays = 0
        self.evals = 0

    @property
    def decay(self) -> float:
        return self.cfg.factor**self.num_decays

    def lrs(self) -> tuple[float, ...]:
        return tuple(max(p * self.decay, self.cfg.min_lr) for p in self.peak_lrs)

    def at_floor(self) -> bool:
        return all(lr <= self.cfg.min_lr * (1 + 1e-9) for lr in self.lrs())

    def step(self, metric: float, *, warming_up: bool = False) -> EvalDecision:
        """Record one epoch's validation AP and say whether to decay and whether to stop.

        ``warming_up``: the LR has not reached its peak yet; the eval can set a new best, nothing else.
        """
        epoch = self.evals
        self.evals += 1
        was_at_floor = self.at_floor()
        improved = not math.isnan(metric) and metric > self.best + self.cfg.min_delta
        decayed = False
        if improved:
            self.best, self.best_epoch = float(metric), epoch
            self.bad_evals = 0
            self.stale_at_floor = 0
        elif warming_up:
            pass
        else:
            self.bad_evals += 1
            if was_at_floor:
                self.stale_at_floor += 1
            if self.bad_evals >= self.cfg.t1:
                self.bad_evals = 0
                if not was_at_floor:
                    self.num_decays += 1
                    decayed = True
        stop = was_at_floor and self.stale_at_floor >= self.cfg.t2 and not warming_up
        return EvalDecision(epoch, float(metric), improved, decayed, stop, self.decay, self.lrs(), warming_up)

    def state_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("cfg", "peak_lrs")}

    def load_state_dict(self, state: dict) -> None:
        for key in ("best", "best_epoch", "bad_evals", "stale_at_floor", "num_decays", "evals"):
            setattr(self, key, state[key])

    def describe(self) -> dict:
        return {"config": asdict(self.cfg), **self.state_dict(), "lrs": self.lrs()}
