"""``detclip-bench train``: run a training recipe (appendix Table 1 pre-training, or any recipe)."""

from __future__ import annotations

import argparse
import os

from detclip_bench.cli.options import add_data_map_option, add_data_root_option, add_device_option, add_out_option

EPILOG = """examples:
  detclip-bench train --recipe table1-pretrain-t --scale mini --data-root mini_world --out runs/pretrain-mini
  detclip-bench train --recipe table1-pretrain-t --scale mini --data-root mini_world --set schedule.epochs=2
  torchrun --nproc_per_node 8 -m detclip_bench.cli.main train --recipe table1-pretrain-t --data-root /data --out runs/t
  detclip-bench train --recipe table1-pretrain-t --scale mini --data-root mini_world --out runs/pretrain-mini --resume
  # O365/GoldG/CC where they are: GLIP's DATASET/ and mmdetection's data/ layouts are recognised under --data-root
  detclip-bench train --recipe table1-pretrain-t --data-root /data --data-map o365=/mnt/objects365v2 --dump-config
"""


# train reads the recipe's relative data paths under this folder (no suite to pick $DETCLIP_BENCH_DATA/_MINI by)
TRAIN_ROOT_HELP = "$DETCLIP_BENCH_DATA, else the current folder; the recipe's relative data paths are read under it"


def add_common_args(
    p: argparse.ArgumentParser,
    *,
    scale_default: str | None = "mini",
    scale_help: str = "recipe scale (default: mini)",
    out_help: str = "default runs/<recipe name>",
) -> None:
    """The arguments ``train`` and ``finetune`` share; each verb states its own ``--scale`` and ``--out``
    defaults, so that ``--help`` says what a run without them really does (``--data-root`` too: its own)."""
    p.add_argument("--scale", choices=("mini", "full"), default=scale_default, help=scale_help)
    add_out_option(p, out_help)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, type-checked, e.g. optim.lr=1e-4 or data.o365.batch_size=8",
    )
    add_device_option(p)
    p.add_argument("--dump-config", action="store_true", help="print the resolved recipe as JSON and exit")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a recipe (pre-training, Table 1)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--recipe", required=True, help="recipe name (`detclip-bench ls recipes` lists them)")
    add_common_args(p)
    add_data_root_option(p, default_help=TRAIN_ROOT_HELP)
    p.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    add_data_map_option(p)
    p.set_defaults(func=run)


def resolve_recipe(name: str, args: argparse.Namespace):
    """Recipe → overrides → data root; a bad --set is reported as a usage error by the caller."""
    from recipes import get_recipe
    from reference_model.train.config import apply_overrides, locate_data, with_data_root

    cfg = apply_overrides(get_recipe(name, args.scale), args.overrides)
    root = args.data_root or os.environ.get("DETCLIP_BENCH_DATA") or "."  # TRAIN_ROOT_HELP
    return with_data_root(locate_data(cfg, root, getattr(args, "data_map", None)), root)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from reference_model.train.config import config_to_dict

    try:
        cfg = resolve_recipe(args.recipe, args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dump_config:
        print(json.dumps(config_to_dict(cfg), indent=2))
        return 0

    from detclip_bench.dist import cleanup, init_distributed
    from reference_model.train.build import build_model, open_sources
    from reference_model.train.checkpoint import unwrap
    from reference_model.train.engine import Trainer

    ctx = init_distributed(args.device)
    out = args.out or f"runs/{cfg.name}"
    trainer = Trainer(cfg, build_model(cfg), open_sources(cfg), out, ctx=ctx)
    summary = trainer.fit(resume=args.resume)
    model = unwrap(trainer.final_model)  # the EMA of the weights when the recipe keeps one
    if ctx.is_main and hasattr(model, "save_pretrained"):
        model.save_pretrained(f"{out}/model")
        summary["model"] = f"{out}/model"
    if ctx.is_main:
        print(json.dumps(summary, indent=2))
    cleanup()
    return 0
