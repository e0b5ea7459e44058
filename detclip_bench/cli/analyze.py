"""``detclip-bench analyze``: browse an eval run's errors in FiftyOne."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  # build the FiftyOne dataset (TP/FP/FN at IoU 0.5, LVIS federated rules) and its saved views
  detclip-bench analyze --results runs/eval/mini-lvis
  # ... and serve the App on http://127.0.0.1:5151 until Ctrl-C
  detclip-bench analyze --results runs/eval/odinw13 --data-root /data --launch --port 5151

FiftyOne state: the database (~300 MB) and FiftyOne's config live in ./.fiftyone (override with
--fiftyone-dir or $DETCLIP_BENCH_FIFTYONE_DIR); your ~/.fiftyone is neither read nor written
unless you pass --fiftyone-global. Needs the extra: pip install 'detclip-bench[fiftyone]'.
Saved views: worst-categories, rare-category-misses, high-score-false-positives,
localization-errors, duplicate-detections, category-confusions. See docs/analysis.md.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="FiftyOne error analysis of an eval run", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True, metavar="RUN_DIR", help="folder written by `detclip-bench eval --out`")
    p.add_argument("--suite", help="suite name (default: the one in RUN_DIR/results.json; must match it)")
    p.add_argument("--data-root", help="data root (default: as `eval`: $DETCLIP_BENCH_DATA / $DETCLIP_BENCH_MINI)")
    p.add_argument("--name", help="dataset name (default detclip-<suite>-<model identity>; replaced if it exists)")
    p.add_argument("--launch", action="store_true", help="serve the FiftyOne App on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=5151, help="App port (default 5151)")
    p.add_argument("--high-score", type=float, default=0.5, help="confidence for the high-score FP view")
    p.add_argument("--worst-k", type=int, default=10, help="categories per member in the worst-categories view")
    p.add_argument("--fiftyone-dir", help="FiftyOne state folder (default ./.fiftyone)")
    p.add_argument("--fiftyone-global", action="store_true", help="use your global ~/.fiftyone config and database")
    p.set_defaults(func=run)


def run(args) -> int:
    from detclip_bench.analysis.fo_env import configure_fiftyone

    state = configure_fiftyone(args.fiftyone_dir, global_config=args.fiftyone_global)  # before fiftyone is imported

    from detclip_bench.analysis.fo_dataset import build_dataset
    from detclip_bench.analysis.run_dir import load_run
    from detclip_bench.analysis.views import save_analysis_views

    loaded = load_run(args.results, suite=args.suite, data_root=args.data_root)
    ds = build_dataset(loaded, name=args.name)
    counts = save_analysis_views(ds, worst_k=args.worst_k, high_score=args.high_score)
    tp, fp, fn, ign = (int(ds.sum(f"eval_{k}")) for k in ("tp", "fp", "fn", "ignored"))
    print(f"dataset {ds.name!r}: {len(ds)} images, TP={tp} FP={fp} FN={fn} ignored={ign} (IoU 0.5)"
          + (f"; FiftyOne state in {state}" if state else ""))
    for view, n in counts.items():
        print(f"  view {view}: {n} images")
    if args.launch:
        from detclip_bench.analysis.app import serve_until_interrupted

        serve_until_interrupted(ds, port=args.port)
    return 0
