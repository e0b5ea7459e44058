"""Subprocess entry for the distributed and kill/resume tests: ``python -m tests.train.run_toy OUT [flags]``."""

import argparse
import time

import torch

from detclip_bench.dist import cleanup, init_distributed
from reference_model.train.engine import Trainer
from tests.train.toy import ToyModel, toy_collate, toy_config, toy_datasets


def slow_collate(*args):
    time.sleep(0.05)
    return toy_collate(*args)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--slow", action="store_true")
    p.add_argument("--micro", type=int, default=0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    args = p.parse_args()
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    cfg = toy_config(epochs=args.epochs, micro=args.micro, ckpt_every=1, deterministic=True, keep_ckpts=2)
    trainer = Trainer(
        cfg,
        ToyModel(dropout=args.dropout),
        toy_datasets(),
        args.out,
        ctx=ctx,
        collate=slow_collate if args.slow else toy_collate,
        progress=False,
    )
    trainer.fit(resume=args.resume)
    cleanup()


if __name__ == "__main__":
    main()
