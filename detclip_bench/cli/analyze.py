"""``detclip-bench analyze``: browse an eval run's errors in FiftyOne."""

from __future__ import annotations

import argparse

from detclip_bench.cli.options import add_data_root_option, add_run_dir_argument, run_dir_from_args

EXAMPLES = """examples:
  # build the FiftyOne dataset (TP/FP/FN at IoU 0.5, LVIS federated rules) and its saved views
  detclip-bench analyze runs/eval/mini-lvis
  # run again on the unchanged folder: the dataset is reused (seconds); --rebuild builds it anew
  # ... and serve the App on http://127.0.0.1:5151 until Ctrl-C, opened on the saved view
  # confident-predictions (all images and GT, predictions with confidence >= 0.3)
  detclip-bench analyze runs/eval/odinw13 --data-root /data --launch --port 5151
  # open on another saved view, or on every prediction of every image
  detclip-bench analyze runs/eval/mini-lvis --launch --view high-score-false-positives
  detclip-bench analyze runs/eval/mini-lvis --launch --view all

FiftyOne state: the database (~300 MB) and FiftyOne's config live in ./.fiftyone (override with
--fiftyone-dir or $DETCLIP_BENCH_FIFTYONE_DIR); your ~/.fiftyone is neither read nor written
unless you pass --fiftyone-global. Needs the extra: pip install 'detclip-bench[fiftyone]'.
Saved views: confident-predictions (the --launch default), worst-categories, rare-category-misses,
high-score-false-positives, localization-errors, duplicate-detections, category-confusions; switch
between them in the App's saved-views dropdown (top of the left sidebar). See docs/analysis.md.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="FiftyOne error analysis of an eval run",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_dir_argument(p)
    p.add_argument("--suite", help="suite name (default: the one in RUN_DIR/results.json; must match it)")
    add_data_root_option(p)
    p.add_argument(
        "--name",
        help="dataset name (default detclip-<suite>-<model identity>; reused if built from this unchanged run, "
        "else replaced)",
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="build the dataset again even if one of this name was built from the same, unchanged run folder",
    )
    p.add_argument("--launch", action="store_true", help="serve the FiftyOne App on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=5151, help="App port (default 5151)")
    p.add_argument(
        "--view",
        default="confident-predictions",
        metavar="NAME",
        help="what --launch opens: a saved view (listed below), or 'all' for every prediction "
        "(default confident-predictions)",
    )
    p.add_argument(
        "--min-score",
        type=float,
        default=0.3,
        metavar="T",
        help="confidence threshold of the confident-predictions view (default 0.3)",
    )
    p.add_argument("--high-score", type=float, default=0.5, help="confidence for the high-score FP view")
    p.add_argument("--worst-k", type=int, default=10, help="categories per member in the worst-categories view")
    p.add_argument("--fiftyone-dir", help="FiftyOne state folder (default ./.fiftyone)")
    p.add_argument("--fiftyone-global", action="store_true", help="use your global ~/.fiftyone config and database")
    p.set_defaults(func=run)


def run(args) -> int:
    from detclip_bench.analysis.fo_env import configure_fiftyone
    from detclip_bench.analysis.views import ALL, VIEW_NAMES

    run_dir = run_dir_from_args(args)
    if run_dir is None:
        return 2
    if args.view not in (*VIEW_NAMES, ALL):  # before the minutes of building the dataset
        raise SystemExit(f"error: --view {args.view!r}: choose one of {', '.join((*VIEW_NAMES, ALL))}")
    state = configure_fiftyone(args.fiftyone_dir, global_config=args.fiftyone_global)  # before fiftyone is imported

    from detclip_bench.analysis.fo_dataset import build_dataset, reusable_dataset
    from detclip_bench.analysis.run_dir import load_run
    from detclip_bench.analysis.views import launch_view, save_analysis_views

    loaded = load_run(run_dir, suite=args.suite, data_root=args.data_root)
    ds = None if args.rebuild else reusable_dataset(loaded, name=args.name)
    if ds is not None:
        print(f"dataset {ds.name!r} reused: built from this run folder, unchanged since (--rebuild builds it again)")
    else:
        ds = build_dataset(loaded, name=args.name)
    counts = save_analysis_views(ds, worst_k=args.worst_k, high_score=args.high_score, min_score=args.min_score)
    tp, fp, fn, ign = (int(ds.sum(f"eval_{k}")) for k in ("tp", "fp", "fn", "ignored"))
    print(
        f"dataset {ds.name!r}: {len(ds)} images, TP={tp} FP={fp} FN={fn} ignored={ign} (IoU 0.5)"
        + (f"; FiftyOne state in {state}" if state else "")
    )
    opens = args.view if args.launch else None
    print("saved views (images):" + (f"  * = what the App opens (--view {args.view})" if opens else ""))
    for view, n in [*counts.items(), (ALL, len(ds))]:
        note = "  (no saved view: every prediction; the App's 'Unsaved view')" if view == ALL else ""
        print(f"  {'*' if view == opens else ' '} {view:<28} {n:>7}{note}")
    if args.launch:
        from detclip_bench.analysis.app import serve_until_interrupted

        print(
            "switch views in the App's saved-views dropdown (top of the left sidebar), or relaunch with --view NAME",
            flush=True,
        )
        serve_until_interrupted(ds, port=args.port, view=launch_view(ds, args.view))
    return 0
