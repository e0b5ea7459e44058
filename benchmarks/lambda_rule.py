"""The mini λ rule: measure ‖image-text gradient‖ / ‖detection-gradient‖ at λ = 1 and print the λ that meets it.

The rule (recipes/mini_design.py, ``MINI_GRAD_SHARE``), fixed before any claims run: over the first 20 folded
updates of the with-pairs arm (world seed 0, training seed 0), the image-text gradient's norm is
``MINI_GRAD_SHARE`` times the detection/grounding gradient's (all parameters). The gradient is linear in λ,
so λ = share / ratio(λ = 1). Runs 40 iterations (20 folded updates) of the arm's own config on CPU.

    python benchmarks/lambda_rule.py --world runs/mini/mini_world

Writes benchmarks/results/lambda_rule.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="mini world folder (detclip-bench data make-mini)")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--out", default=str(RESULTS / "lambda_rule.json"))
    args = parser.parse_args(argv)

    import torch

    from detclip_bench.io import atomic_write_json, read_json
    from detclip_bench.provenance import git_hash
    from recipes.claims import MINI
    from recipes.experiment import with_model_overrides
    from recipes.mini_design import MINI_GRAD_SHARE, MINI_LAMBDA
    from reference_model.train.build import build_model, open_sources
    from reference_model.train.config import with_data_root
    from reference_model.train.engine import Trainer

    torch.set_num_threads(2)
    cfg = MINI.run("o365-goldg-cc").config
    cfg = dataclasses.replace(
        cfg,
        model=with_model_overrides(cfg.model, loss_contrastive=1.0),
        schedule=dataclasses.replace(cfg.schedule, max_steps=2 * args.updates),
        seed=0,
        ema_decay=0.0,
    )
    cfg = with_data_root(cfg, args.world)
    torch.manual_seed(cfg.seed)
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(cfg, build_model(cfg), open_sources(cfg), tmp, progress=True).fit()
        records = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    ratios = [r["grad_ratio"] for r in records if "grad_ratio" in r][: args.updates]
    ratio = statistics.mean(ratios)
    result = {
        "rule": f"image-text gradient norm = {MINI_GRAD_SHARE} x detection/grounding gradient norm, "
        f"mean over the first {args.updates} folded updates, world seed "
        f"{read_json(Path(args.world) / 'manifest.json')['seed']}, training seed 0",
        "ratio_at_lambda_1": ratio,
        "ratios": ratios,
        "lambda": MINI_GRAD_SHARE / ratio,
        "lambda_in_recipe": MINI_LAMBDA,
        "git": git_hash(),
        "threads": torch.get_num_threads(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "ratios"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
