"""``detclip-bench finetune``: fine-tune a checkpoint on LVIS (Table 2) or every ODinW13 member (Table 3)."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  detclip-bench finetune --model runs/pretrain-mini/model --suite mini-odinw13 --data-root mini_world --out runs/ft
  detclip-bench finetune --model runs/pretrain-mini/model --suite odinw13 --scale full --data-root /data/odinw
  detclip-bench finetune --model ckpt --suite lvis --scale full --data-root /data --set schedule.epochs=12
"""

RECIPE_FOR_SUITE = {"lvis": "table2-lvis-finetune", "odinw13": "table3-odinw13-finetune"}


def add_parser(subparsers) -> None:
    from detclip_bench.cli.train import add_common_args

    p = subparsers.add_parser("finetune", help="fine-tune on LVIS or ODinW13 (Tables 2–3)", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a save_pretrained directory (e.g. <train out>/model)")
    p.add_argument("--suite", required=True, help="odinw13 | lvis (or their mini- versions)")
    add_common_args(p)
    p.add_argument("--members", nargs="*", default=None, help="fine-tune only these suite members")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import sys
    from pathlib import Path

    from detclip_bench.cli.train import resolve_recipe

    base_suite = args.suite.removeprefix("mini-")
    if base_suite not in RECIPE_FOR_SUITE:
        print(f"error: unknown suite {args.suite!r}; choose from odinw13, lvis (optionally mini-)", file=sys.stderr)
        return 2
    try:
        cfg = resolve_recipe(RECIPE_FOR_SUITE[base_suite], args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_from=args.model))

    from detclip_bench.suites import get_suite  # the suite knows members, splits and the metric
    from reference_model.train.finetune import finetune, write_suite_report

    suite = get_suite(args.suite)
    out = Path(args.out or f"runs/finetune-{args.suite}")
    results = []
    for member in suite.members:
        if args.members and member.name not in args.members:
            continue
        member_cfg = dataclasses.replace(cfg, data=(dataclasses.replace(cfg.data[0], path=str(member.train_path(args.data_root))),))
        from detclip_bench.cli.train import build_model, open_sources

        results.append(finetune(
            member_cfg, build_model(member_cfg), open_sources(member_cfg)[0], out / member.name.replace("/", "_"),
            member=member.name,
            evaluate_val=lambda m, mb=member: suite.evaluate(m, mb, split="val", data_root=args.data_root),
            evaluate_test=lambda m, mb=member: suite.evaluate(m, mb, split="test", data_root=args.data_root),
        ))
    report = write_suite_report(results, out, args.suite)
    print(json.dumps({"average_test_ap": report["average_test_ap"], "out": str(out)}, indent=2))
    return 0
