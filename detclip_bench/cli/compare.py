"""``detclip-bench compare``: ΔAP between evaluation runs of one suite, with paired bootstrap intervals."""

from __future__ import annotations

import argparse

from detclip_bench.cli.options import (
    add_bootstrap_options,
    add_data_map_option,
    add_data_root_option,
    add_out_option,
)

EXAMPLES = """examples:
  # two models on the same suite: Δ per metric with a 95% paired image-bootstrap interval
  detclip-bench compare runs/eval/lvis-minival runs/eval/lvis-minival2
  # arms with several training seeds (comma-separated run folders): seeds x images, paired by position
  detclip-bench compare OUT/eval/o365-s0-zero-shot-mini-lvis,OUT/eval/o365-s1-zero-shot-mini-lvis \\
                        OUT/eval/o365_cc-s0-zero-shot-mini-lvis,OUT/eval/o365_cc-s1-zero-shot-mini-lvis --paired-seeds
  # ODinW13: Δ per dataset and for the 13-set average (each dataset resampled within itself)
  detclip-bench compare runs/eval/odinw13 runs/eval/odinw13-2 --data-root /data

The first arm is the baseline; every other arm is compared with it. Runs are re-scored from their own
predictions/ (no model runs); the suite's annotations are read from the data root, as `eval` finds them.
Writes compare.json (every key, fractions), compare.md (tables, AP points) and compare.png (interval bars).
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="ΔAP between runs of one suite, with paired bootstrap intervals",
        description="Compare evaluation runs of one suite on the same images: Δ = arm − baseline per metric "
        "(and per member and for the average of suites like ODinW13), with 95%% intervals from image resamples "
        "shared by every run, and from training seeds when an arm holds several runs.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="a run folder (results.json + predictions/), or several joined by commas (one arm, one run per seed); "
        "the first is the baseline",
    )
    p.add_argument("--label", action="append", default=[], help="a name per arm, in order (default: folder names)")
    p.add_argument(
        "--paired-seeds",
        action="store_true",
        help="run i of every arm shares a training seed with run i of the baseline: draw seeds together",
    )
    add_data_root_option(p)
    add_data_map_option(p)
    add_out_option(p, "default runs/compare, then runs/compare2, ...")
    p.add_argument("--exist-ok", action="store_true", help="write into --out even if it holds files")
    add_bootstrap_options(p, default=1000)
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from detclip_bench.compare import compare_runs, plot_comparison
    from detclip_bench.io import atomic_write_json, atomic_write_text, run_out_dir

    arms = [[f for f in spec.split(",") if f] for spec in args.runs]
    if len(arms) < 2:
        print("error: compare needs at least two arms (the baseline first)", file=sys.stderr)
        return 2
    if args.bootstrap < 1:
        print("error: compare needs --bootstrap >= 1 resamples", file=sys.stderr)
        return 2
    if args.label and len(args.label) != len(arms):
        print(f"error: {len(args.label)} --label for {len(arms)} arms", file=sys.stderr)
        return 2
    try:
        out = run_out_dir(args.out, exist_ok=args.exist_ok, default="runs/compare", replaces="its comparison files")
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        comparison = compare_runs(
            arms,
            labels=args.label or None,
            data_root=args.data_root,
            data_map=args.data_map,
            n_replicates=args.bootstrap,
            seed=args.bootstrap_seed,
            paired_seeds=args.paired_seeds,
            progress=lambda text: print(f"re-scoring {text}", file=sys.stderr),
        )
    except ValueError as exc:
        if type(exc) is not ValueError:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "compare.json", comparison.to_dict())
    text = comparison.to_markdown()
    atomic_write_text(out / "compare.md", text + "\n")
    plot_comparison(comparison, out / "compare.png")
    print(text)
    print(f"written: {out / 'compare.json'}, compare.md, compare.png")
    return 0
