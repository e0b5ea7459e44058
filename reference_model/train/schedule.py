"""Per-iteration LR factors: linear warm-up, then cosine (Tables 1–2) or constant (Table 3's auto-step).

Implemented as a picklable callable for ``torch.optim.lr_scheduler.LambdaLR`` so every group keeps
its own peak LR (text ×0.1) and the scheduler's ``state_dict`` round-trips through checkpoints.
The warm-up multiplies the body, mmcv-style: ``factor = body(it) * (r + (1 - r) * it / W)`` for
``it < W`` with ``r = warmup_ratio``. Cosine runs over all ``total_iters`` (warm-up included):
``body = m + (1 - m) * (1 + cos(pi * it / total)) / 2``. ``decay`` is the auto-step multiplier
that the early-stop rule lowers (1, 0.1, 0.01, …); each group has its own factor whose ``floor``
is ``min_lr / group_peak``, so a group's LR is ``max(peak * decay, min_lr)`` — exactly what
``ReduceLROnPlateau(min_lr=...)`` does to every group. ``warmup_max_share`` caps the warm-up at a share
of the planned iterations (:func:`warmup_iters`).
"""

from __future__ import annotations

import math

import torch

from reference_model.train.config import ScheduleConfig

__all__ = ["LRFactor", "build_scheduler", "group_lrs", "in_warmup", "set_decay", "warmup_iters"]


class LRFactor:
    def __init__(
        self,
        kind: str,
        total_iters: int,
        warmup_iters: int,
        warmup_ratio: float,
        min_lr_ratio: float = 0.0,
        floor: float = 0.0,
    ):
        if kind not in ("cosine", "auto_step", "constant"):
            raise ValueError(f"unknown schedule kind {kind!r}")
        self.kind = kind
        self.total_iters = max(1, int(total_iters))
        self.warmup_iters = int(warmup_iters)
        self.warmup_ratio = float(warmup_ratio)
        self.min_lr_ratio = float(min_lr_ratio)
        self.floor = float(floor)
        self.decay = 1.0

    def body(self, it: int) -> float:
        if self.kind == "cosine":
            t = min(it, self.total_iters) / self.total_iters
            return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
        return max(self.decay, self.floor)

    def __call__(self, it: int) -> float:
        factor = self.body(it)
        if it < self.warmup_iters:
            factor *= self.warmup_ratio + (1.0 - self.warmup_ratio) * it / self.warmup_iters
        return factor


def warmup_iters(cfg: ScheduleConfig, total_iters: int) -> int:
    """The warm-up length actually used: ``cfg.warmup_iters``, at most ``warmup_max_share`` of the planned
    iterations (at least 1 when a warm-up is configured)."""
    if cfg.warmup_iters <= 0:
        return 0
    return max(1, min(cfg.warmup_iters, int(cfg.warmup_max_share * max(1, total_iters))))


def in_warmup(scheduler: torch.optim.lr_scheduler.LambdaLR) -> bool:
    """Whether the next iteration still runs below the peak LR (the warm-up has not finished)."""
    return scheduler.last_epoch < max(f.warmup_iters for f in scheduler.lr_lambdas)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, total_iters: int, min_lr: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """One :class:`LRFactor` per param group (floors differ because peaks differ); warm-up per :func:`warmup_iters`."""
    factors = [
        LRFactor(
            cfg.kind,
            total_iters,
            warmup_iters(cfg, total_iters),
            cfg.warmup_ratio,
            cfg.min_lr_ratio,
            floor=min_lr / group["lr"] if min_lr > 0 else 0.0,
        )
        for group in optimizer.param_groups
    ]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=factors)


def set_decay(scheduler: torch.optim.lr_scheduler.LambdaLR, decay: float) -> None:
    """Set the auto-step multiplier on every group and apply it to the current LR at once."""
    for factor, group in zip(scheduler.lr_lambdas, scheduler.optimizer.param_groups, strict=True):
        factor.decay = decay
        group["lr"] = group["initial_lr"] * factor(scheduler.last_epoch)


def group_lrs(scheduler: torch.optim.lr_scheduler.LambdaLR, after_warmup: bool = True) -> dict[str, float]:
    """Each group's LR by name; ``after_warmup`` gives the post-warm-up value the early-stop rule compares."""
    out = {}
    for factor, group in zip(scheduler.lr_lambdas, scheduler.optimizer.param_groups, strict=True):
        value = group["initial_lr"] * factor.body(scheduler.last_epoch) if after_warmup else group["lr"]
        out[group.get("name", str(len(out)))] = value
    return out
