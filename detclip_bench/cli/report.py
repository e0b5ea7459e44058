"""``detclip-bench report``: a static HTML/markdown page for an eval run (no FiftyOne)."""

from __future__ import annotations

import argparse

from detclip_bench.cli.options import add_data_root_option, add_out_option, add_run_dir_argument, run_dir_from_args

EXAMPLES = """examples:
  detclip-bench report runs/eval/mini-lvis            # -> runs/eval/mini-lvis/report/report.html (+ .md)
  detclip-bench report runs/eval/odinw13 --data-root /data --out runs/odinw-report

The page: the run's breakdown (AP/AP50/AP75 and APr/APc/APf, copied from results.json), PR
curves at IoU 0.5 and per-category AP bars from our evaluator, and the most confident false
positives drawn with their boxes. Images come from the data root (as for `eval`).
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="static HTML/markdown report of an eval run",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_dir_argument(p)
    add_data_root_option(p)
    add_out_option(p, "default RUN_DIR/report")
    p.add_argument("--gallery", type=int, default=12, help="number of false positives shown (default 12)")
    p.set_defaults(func=run)


def run(args) -> int:
    from detclip_bench.analysis.report import write_report
    from detclip_bench.analysis.run_dir import load_run

    run_dir = run_dir_from_args(args)
    if run_dir is None:
        return 2
    rep = write_report(load_run(run_dir, data_root=args.data_root), args.out, gallery=args.gallery)
    print(f"report: {rep.html} (+ {rep.markdown.name}, {len(rep.figures)} figures)")
    return 0
