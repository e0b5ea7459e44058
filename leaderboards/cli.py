"""``detclip-bench leaderboard``: the paper's published numbers beside the toolkit's own results."""

from __future__ import annotations

import argparse

from detclip_bench.cli.options import add_hidden_alias, add_out_option

EPILOG = """\
examples:
  detclip-bench leaderboard                              # every table, filed results from runs/leaderboard/results/
  detclip-bench leaderboard --suite odinw13 --out runs/lb
  detclip-bench leaderboard --store runs/mini/results --out runs/mini/leaderboard
  detclip-bench leaderboard --no-plots                  # markdown + JSON only
  # file a suite run (from `detclip-bench eval`) as a row, then render: peers sit beside DetCLIPv2
  detclip-bench leaderboard --add-run runs/eval/owlv2 --label OWLv2-B/16 --store runs/lb/results

Writes leaderboard.md, leaderboard.json and PNG plots into --out. Mini-world results are
rendered in their own section, never inside a paper table. Printed averages are recomputed
from per-dataset rows; disagreements are flagged.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "leaderboard",
        help="render paper tables + toolkit results as markdown, JSON and plots",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--suite",
        default=None,
        help="only this suite family (lvis-minival, lvis-val, odinw13; "
        "toolkit names like mini-odinw13-finetune map to their family)",
    )
    p.add_argument(
        "--store",
        metavar="DIR",
        default=None,
        help="folder of filed toolkit result JSON files, the rows (default: runs/leaderboard/results/; "
        "reproduce files into OUT/results)",
    )
    add_hidden_alias(p, "--results", dest="store")
    p.add_argument("--data", default=None, help="folder of paper table JSON files (default: leaderboards/data/)")
    add_out_option(p, "default runs/leaderboard", default="runs/leaderboard")
    p.add_argument("--no-plots", action="store_true", help="skip the matplotlib figures")
    p.add_argument(
        "--add-run",
        action="append",
        default=[],
        metavar="RUN_DIR",
        help="a `detclip-bench eval` run folder to file into --store first (repeatable)",
    )
    p.add_argument("--label", default=None, help="model name shown for --add-run rows (default: its --model spec)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from leaderboards.paper import load_paper_tables
    from leaderboards.render import write_leaderboard
    from leaderboards.results import load_results
    from leaderboards.suite_runs import add_suite_run

    for run_dir in args.add_run:
        for path in add_suite_run(run_dir, args.label, args.store):
            print(f"added {path}")
    tables = load_paper_tables(args.data)
    results = [r.to_entry(str(path)) for path, r in load_results(args.store)]
    written = write_leaderboard(args.out, tables, results, suite=args.suite, plots=not args.no_plots)
    n_mini = sum(r.scale == "mini" for r in results)
    print(f"leaderboard: {len(tables)} paper tables, {len(results)} toolkit results ({n_mini} mini-world)")
    for check in written["checks"]:
        if not check.ok and not check.acknowledged:  # the paper's own known slips are in leaderboard.md, once
            print(f"warning: average mismatch: {check.describe()}")
    print(f"wrote {written['markdown']}, {written['json']}" + "".join(f", {p.name}" for p in written["plots"]))
    return 0
