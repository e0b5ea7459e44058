"""``detclip-bench train``: run a training recipe (appendix Table 1 pre-training, or any recipe)."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  detclip-bench train --recipe table1-pretrain-t --scale mini --data-root mini_world --out runs/pretrain-mini
  detclip-bench train --recipe table1-pretrain-t --scale mini --data-root mini_world --set schedule.epochs=2
  torchrun --nproc_per_node 8 -m detclip_bench.cli.main train --recipe table1-pretrain-t --data-root /data --out runs/t
  detclip-bench train --recipe table1-pretrain-t --scale mini --data-root mini_world --out runs/pretrain-mini --resume
  # O365/GoldG/CC where they are: GLIP's DATASET/ and mmdetection's data/ layouts are recognised under --data-root
  detclip-bench train --recipe table1-pretrain-t --data-root /data --data-map o365=/mnt/objects365v2 --dump-config
"""


def add_common_args(
    p: argparse.ArgumentParser,
    *,
    scale_default: str | None = "mini",
    scale_help: str = "recipe scale (default: mini)",
    out_help: str = "run directory (default: runs/<recipe name>)",
) -> None:
    """The arguments ``train`` and ``finetune`` share; each verb states its own ``--scale`` and ``--out``
    defaults, so that ``--help`` says what a run without them really does."""
    p.add_argument("--scale", choices=("mini", "full"), default=scale_default, help=scale_help)
    p.add_argument("--data-root", default=".", help="root that the recipe's relative data paths live under")
    p.add_argument("--out", default=None, help=out_help)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, type-checked, e.g. optim.lr=1e-4 or data.o365.batch_size=8",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dump-config", action="store_true", help="print the resolved recipe as JSON and exit")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a recipe (pre-training, Table 1)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--recipe", required=True, help="recipe name (see recipes/__init__.py)")
    add_common_args(p)
    p.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    p.add_argument(
        "--data-map",
        action="append",
        default=[],
        metavar="NAME=FOLDER[,...]",
        help="per-dataset folders in our, GLIP's or mmdetection's layout, e.g. "
        "o365=/mnt/Objects365,goldg=/mnt/DATASET (`detclip-bench data validate FOLDER` shows each)",
    )
    p.set_defaults(func=run)


def resolve_recipe(name: str, args: argparse.Namespace):
    """Recipe → overrides → data root; a bad --set is reported as a usage error by the caller."""
    from recipes import get_recipe
    from reference_model.train.config import apply_overrides, locate_data, with_data_root

    cfg = apply_overrides(get_recipe(name, args.scale), args.overrides)
    return with_data_root(locate_data(cfg, args.data_root, getattr(args, "data_map", None)), args.data_root)


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
