"""``detclip-bench finetune``: fine-tune a checkpoint on LVIS (Table 2) or every ODinW13 member (Table 3)."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  detclip-bench finetune --model runs/mini/pretrain/model --suite mini-odinw13 --data-root mini_world
  detclip-bench finetune --model runs/mini/pretrain/model --suite mini-odinw13 --members Aquarium pothole
  detclip-bench finetune --model ckpt/ --suite odinw13 --data-root /data --out runs/odinw13-ft
  detclip-bench finetune --model ckpt/ --suite lvis --data-root /data --set schedule.epochs=12

ODinW13: per dataset, early stop on val (mini_val where the suite says so), test AP of the best-val
checkpoint, unweighted mean over the 13. LVIS: 24 epochs cosine on lvis_v1_train, scored on val.
"""

# suite given on the command line -> (suite that is scored, recipe that trains)
FINETUNE_SUITES = {
    "odinw13": ("odinw13-finetune", "table3-odinw13-finetune"),
    "lvis": ("lvis-val", "table2-lvis-finetune"),
}


def resolve(name: str) -> tuple[str, str, bool]:
    """``mini-odinw13`` → (``mini-odinw13-finetune``, recipe, mini=True); accepts the scored names too."""
    mini = name.startswith("mini-")
    base = name.removeprefix("mini-").removesuffix("-finetune")
    base = "lvis" if base in ("lvis-val", "lvis-minival") else base
    if base not in FINETUNE_SUITES:
        raise ValueError(f"cannot fine-tune on {name!r}; choose odinw13 or lvis (or mini-odinw13, mini-lvis)")
    suite, recipe = FINETUNE_SUITES[base]
    return ("mini-" + suite if mini else suite), recipe, mini


def add_parser(subparsers) -> None:
    from detclip_bench.cli.train import add_common_args

    p = subparsers.add_parser("finetune", help="fine-tune on LVIS or ODinW13 (Tables 2–3)", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a save_pretrained directory (e.g. <train out>/model) or hub id")
    p.add_argument("--suite", required=True, help="odinw13 | lvis | mini-odinw13 | mini-lvis")
    add_common_args(p)
    p.add_argument("--members", nargs="*", default=None, help="fine-tune only these members (e.g. Aquarium)")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass when scoring val/test")
    p.set_defaults(func=run, scale=None, data_root=None)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import sys
    from pathlib import Path

    from detclip_bench.suites import get_suite, resolve_data_root
    from detclip_bench.suites.finetune import finetune_suite
    from recipes import get_recipe
    from reference_model.train.config import apply_overrides

    try:
        suite_name, recipe, mini = resolve(args.suite)
        cfg = apply_overrides(get_recipe(recipe, args.scale or ("mini" if mini else "full")), args.overrides)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_from=args.model))
    if args.dump_config:
        from reference_model.train.config import config_to_dict

        print(json.dumps(config_to_dict(cfg), indent=2))
        return 0
    from reference_model.train.distributed import cleanup, init_distributed

    suite = get_suite(suite_name)
    root = resolve_data_root(suite, args.data_root)
    out = Path(args.out or f"runs/finetune/{suite_name}")
    ctx = init_distributed(args.device)
    report = finetune_suite(cfg, suite, root, out, members=args.members, ctx=ctx, batch_size=args.batch_size)
    if ctx.is_main:
        print(f"{suite_name}: average test AP {100 * report['average_test_ap']:.1f} over {len(report['rows'])} "
              f"dataset(s) — {out / 'finetune_suite.md'}")
    cleanup()
    return 0
