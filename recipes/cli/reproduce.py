"""``detclip-bench reproduce``: run a results table's recipe and lay it out beside the paper's numbers."""

from __future__ import annotations

import argparse

from detclip_bench.cli.options import add_batch_size_option, add_data_root_option, add_device_option, add_out_option

EPILOG = """examples:
  detclip-bench reproduce --scale mini --out runs/mini          # the mini reproduction (README main job)
  detclip-bench reproduce --table 5 --scale mini --out runs/t5  # appendix Table 5 on the mini world
  detclip-bench reproduce --table 4 --scale mini --out runs/t4  # image-text resolution sweep + cost
  torchrun --nproc-per-node 8 -m detclip_bench.cli.main reproduce --table 7 --scale full --data-root /data --out runs/t7

Tables: claims (default; main paper Table 4's data-scaling claim), 4, 5, 6, 7 (appendix). At mini
scale the mini world is generated into OUT/mini_world unless --data-root names one. Finished runs
in OUT are reused and interrupted ones resume, so re-running only does what is missing.
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="reproduce a paper table (mini world by default)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--table", default="claims", help="claims | 4 | 5 | 6 | 7 (default: claims)")
    p.add_argument("--scale", choices=("mini", "full"), default="mini")
    add_out_option(p, "default runs/reproduce: checkpoints, results, tables, plots", default="runs/reproduce")
    add_data_root_option(p, default_help="--scale mini: OUT/mini_world, generated there; --scale full needs one")
    add_device_option(p)
    add_batch_size_option(p)
    p.add_argument("--seed", type=int, default=0, help="mini-world seed (the generated data; see --train-seeds)")
    p.add_argument(
        "--train-seeds",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="training seeds (model initialisation and batch order); every pre-training run is "
        "repeated per seed (default: the table's own, e.g. 0 1 for the mini claims)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of every training config, e.g. schedule.epochs=1 (smoke runs)",
    )
    p.add_argument("--members", nargs="*", default=None, help="fine-tune only these suite members")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=run)


def _data_root(args, out):
    from pathlib import Path

    from detclip_bench.errors import DataError

    if args.data_root:
        return Path(args.data_root)
    if args.scale == "full":
        raise DataError("--data-root", "-", "full-scale reproduction needs --data-root (see README 'Data layout')")
    import json
    import logging

    from detclip_bench.mini_world.generate import MANIFEST_VERSION

    root = out / "mini_world"
    manifest = root / "manifest.json"
    found = json.loads(manifest.read_text()).get("version") if manifest.is_file() else None
    if found != MANIFEST_VERSION:
        from detclip_bench.mini_world import generate

        if found is not None:  # a world an older toolkit wrote: it lacks files the recipes now read
            logging.getLogger("detclip_bench.reproduce").warning(
                "%s is a %s world; regenerating it as %s", root, found, MANIFEST_VERSION
            )
        generate(root, seed=args.seed, overwrite=root.exists())
    return root


def run(args: argparse.Namespace) -> int:
    import logging
    import sys
    import time
    from pathlib import Path

    from recipes import get_experiment
    from recipes.reproduce import Reproduction, plan_overrides

    logging.getLogger("detclip_bench").setLevel(logging.INFO)
    out = Path(args.out)
    t0 = time.perf_counter()
    try:
        exp = get_experiment(args.table, args.scale)
        seeds = tuple(args.train_seeds or exp.seeds)
        if seeds:
            exp = exp.with_seeds(seeds)
        plan = plan_overrides(exp, tuple(args.overrides))  # every --set checked before any data or model work
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    repro = Reproduction(
        exp,
        args.scale,
        _data_root(args, out),
        out,
        device=args.device,
        batch_size=args.batch_size,
        run_overrides=plan,
        members=args.members,
    )
    report = repro.run()
    if not repro.ctx.is_main:
        return 0
    paths = publish(report, repro.results, out, exp.paper_table, plots=not args.no_plots, data_root=repro.root)
    minutes = (time.perf_counter() - t0) / 60
    print(Path(paths["table"]).read_text())
    if paths["paired"]:
        print(Path(paths["paired"]).read_text())
    print(f"{exp.name}: done in {minutes:.1f} min — table {paths['table']}, leaderboard {paths['leaderboard']}")
    return 0


def publish(report, results: list, out, paper_table_id: str, plots: bool = True, data_root=None) -> dict:
    """``report``: the :class:`~recipes.report.ReproductionReport`; ``results``: (run key, ToolkitResult) pairs → result
    files + the paper-layout table + the leaderboard (markdown, JSON, plots) under ``out``."""
    from detclip_bench.suites import get_suite
    from leaderboards.paper import load_paper_tables
    from leaderboards.render import write_leaderboard
    from leaderboards.results import add_result
    from recipes.paired_report import write_paired_report
    from recipes.paper_layout import write_table

    tables = {t.id: t for t in load_paper_tables()}
    paper = tables.get(paper_table_id)
    entries = [r.to_entry(str(add_result(r, out / "results"))) for _, r in results]
    # the paper-layout table shows each suite's primary protocol; the leaderboard every protocol scored
    primary = [(key, r) for key, r in results if r.protocol == get_suite(r.suite).metrics[0]]
    table = write_table(report, primary, out, paper)
    board = write_leaderboard(out / "leaderboard", [paper] if paper else [], entries, plots=plots)
    paired = write_paired_report(report, out, plots=plots, data_root=data_root)
    return {"table": table["markdown"], "leaderboard": board["markdown"], "paired": paired}
