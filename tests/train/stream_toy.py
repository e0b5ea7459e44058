"""A toy training on a webdataset stream plus a map-style source, logging which records each step trained on.

``python -m tests.train.stream_toy OUT WDS_DIR [--resume] [--slow] [--workers N]``: every forward
appends ``{"ids": [...]}`` to ``OUT/seen.<pid>.jsonl`` (main process, so only records that really
reached the model are logged).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.webdataset_tars import Img2DatasetTars
from detclip_bench.schema import DataKind
from reference_model.train.config import DataSourceConfig, ModelConfig, OptimConfig, ScheduleConfig, TrainConfig
from tests.train.toy import FEATURES, ToyDataset, ToyModel

N_DET = 10


@dataclass
class IdBatch:
    x: torch.Tensor
    y: torch.Tensor
    kind: str
    ids: list[str]

    def to(self, device):
        return IdBatch(self.x.to(device), self.y.to(device), self.kind, self.ids)


class IdToyDataset(ToyDataset):
    def __getitem__(self, i: int):
        return (self.x[i], self.y[i], f"det{i}")


def id_collate(samples, source, dataset, rng):
    """Map samples are (x, y, id); stream samples are image-text Samples (image decoded, mean colour)."""
    del dataset
    if source.kind is DataKind.IMAGE_TEXT:
        x = np.zeros((len(samples), FEATURES), np.float32)
        for i, s in enumerate(samples):
            x[i, :3] = np.asarray(s.load_image(), np.float32).mean((0, 1)) / 255
            x[i, 3:] = rng.normal(size=FEATURES - 3)
        return IdBatch(
            torch.from_numpy(x), torch.zeros(len(samples)), source.kind.value, [s.record_id for s in samples]
        )
    x = torch.from_numpy(np.stack([s[0] for s in samples]))
    y = torch.from_numpy(np.array([s[1] for s in samples]))
    return IdBatch(x, y, source.kind.value, [s[2] for s in samples])


def slow_id_collate(*args):
    time.sleep(0.2)
    return id_collate(*args)


class LoggingModel(ToyModel):
    def __init__(self, log: Path, dropout: float = 0.0) -> None:
        super().__init__(dropout=dropout)
        self.log = str(log)

    def forward(self, batch: IdBatch):
        with open(self.log, "a") as fh:
            fh.write(json.dumps({"ids": batch.ids}) + "\n")
        return super().forward(batch)


class OpenLog(Img2DatasetTars):
    """Img2DatasetTars that appends ``<pid> <shard>`` to ``log`` for every shard it opens (from any process)."""

    def __init__(self, path, log: Path) -> None:
        super().__init__(path)
        self.log = str(log)

    def iter_shard(self, shard, part=(0, 1)):
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()} {shard}\n")
        return super().iter_shard(shard, part)


def stream_config(
    wds: str, *, epochs: int = 2, workers: int = 2, epoch_size: int = 0, batch: int = 4, det_batch: int = 4
) -> TrainConfig:
    data = (
        DataSourceConfig(
            name="det", path="det", format="toy", kind=DataKind.DETECTION, batch_size=det_batch, size=(32, 32)
        ),
        DataSourceConfig(
            name="cc",
            path=wds,
            format="img2dataset-wds",
            kind=DataKind.IMAGE_TEXT,
            batch_size=batch,
            size=(16, 16),
            flip=False,
            epoch_size=epoch_size,
        ),
    )
    return TrainConfig(
        name="stream-toy",
        model=ModelConfig(variant="toy"),
        data=data,
        optim=OptimConfig(lr=1e-2, text_lr_mult=0.1),
        schedule=ScheduleConfig(kind="cosine", epochs=epochs, warmup_iters=3),
        num_workers=workers,
        ckpt_every=1,
        keep_ckpts=2,
    )


def main() -> None:
    from detclip_bench.dist import init_distributed
    from reference_model.train.engine import Trainer

    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("wds")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--slow", action="store_true")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = stream_config(args.wds, epochs=args.epochs, workers=args.workers)
    datasets = [IdToyDataset(N_DET, 1), open_dataset(args.wds, "img2dataset-wds")]
    model = LoggingModel(out / f"seen.{os.getpid()}.jsonl")
    trainer = Trainer(
        cfg,
        model,
        datasets,
        out,
        ctx=init_distributed("cpu"),
        collate=slow_id_collate if args.slow else id_collate,
        progress=False,
    )
    trainer.fit(resume=args.resume)


if __name__ == "__main__":
    main()
