"""A tiny stand-in that follows the DetCLIPv2 training contract (``model(batch) -> {"loss": ...}``,
a ``text_encoder`` submodule, ``set_grad_checkpointing``), so the engine is tested without the real model."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from detclip_bench.schema import DataKind
from reference_model.train.config import (
    DataSourceConfig,
    ModelConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
)

FEATURES = 6


@dataclass
class ToyBatch:
    x: torch.Tensor
    y: torch.Tensor
    kind: str

    def to(self, device):
        return ToyBatch(self.x.to(device), self.y.to(device), self.kind)


class ToyModel(nn.Module):
    def __init__(self, seed: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.backbone = nn.Linear(FEATURES, 8)
        self.norm = nn.LayerNorm(8)
        self.text_encoder = nn.Sequential(nn.Linear(FEATURES, 8))
        self.head = nn.Linear(8, 1)
        self.drop = nn.Dropout(dropout)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def forward(self, batch: ToyBatch) -> dict[str, torch.Tensor]:
        img = self.norm(self.backbone(batch.x))
        if batch.kind == "image_text":
            txt = self.text_encoder(batch.x)
            loss_cts = (img - txt).pow(2).mean()
            return {"loss": 0.1 * loss_cts, "loss_contrastive": loss_cts}
        pred = self.head(self.drop(img)).squeeze(-1)
        loss_reg = (pred - batch.y).pow(2).mean()
        return {"loss": loss_reg, "loss_reg": loss_reg}


class ToyDataset:
    """Map-style: item i is a feature row and a target."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, FEATURES)).astype(np.float32)
        self.y = (self.x @ rng.normal(size=FEATURES)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return (self.x[i], self.y[i])


def toy_collate(samples, source, dataset, rng):
    del dataset, rng
    x = torch.from_numpy(np.stack([s[0] for s in samples]))
    y = torch.from_numpy(np.array([s[1] for s in samples]))
    return ToyBatch(x, y, source.kind.value)


def toy_config(epochs: int = 2, det_batch: int = 4, pair_batch: int = 8, micro: int = 0, **kw) -> TrainConfig:
    data = (
        DataSourceConfig(
            name="det",
            path="det",
            format="toy",
            kind=DataKind.DETECTION,
            batch_size=det_batch,
            size=(32, 32),
            micro_batch=micro,
        ),
        DataSourceConfig(
            name="pairs",
            path="pairs",
            format="toy",
            kind=DataKind.IMAGE_TEXT,
            batch_size=pair_batch,
            size=(16, 16),
            micro_batch=micro,
        ),
    )
    return TrainConfig(
        name="toy",
        model=ModelConfig(variant="toy"),
        data=data,
        optim=OptimConfig(lr=1e-2, text_lr_mult=0.1),
        schedule=ScheduleConfig(kind="cosine", epochs=epochs, warmup_iters=3),
        **kw,
    )


def toy_datasets(n_det: int = 10, n_pairs: int = 16):
    return [ToyDataset(n_det, 1), ToyDataset(n_pairs, 2)]


def sigkill_after_steps(
    cmd: list[str], env: dict, metrics: Path, steps: int, timeout: float = 60, poll: float = 0.02
) -> int:
    """Start a training subprocess, SIGKILL it once ``metrics`` has ``steps`` lines (or at ``timeout``),
    and return how many steps it had logged: the kill half of every kill-and-resume test."""
    victim = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < steps):
        time.sleep(poll)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    return len(metrics.read_text().splitlines())
