"""``detclip-bench eval``: score a model on a named suite."""

from __future__ import annotations

import argparse

from detclip_bench.cli.options import (
    add_batch_size_option,
    add_bootstrap_options,
    add_data_map_option,
    add_data_root_option,
    add_device_option,
    add_out_option,
    add_workers_option,
    bootstrap_from_args,
)
from detclip_bench.suites.runner import DEFAULT_BOOTSTRAP

EVAL_DIR = "runs/eval"
CACHE_DIR = f"{EVAL_DIR}/cache"  # shared by every run: a cached prediction is keyed by model, suite and settings

EXAMPLES = """examples:
  # zero-shot ODinW13 (COCO AP per dataset on val/mini_val, unweighted Avg)
  detclip-bench eval --model runs/mini/o365_cc/checkpoint --suite odinw13 --data-root /data
  # the paper's headline: LVIS minival Fixed AP with APr/APc/APf
  detclip-bench eval --model ckpt/ --suite lvis-minival --out results/lvis
  # LVIS as GLIP/mmdetection keep it (coco/annotations/lvis_v1_minival_inserted_image_name.json + coco/train2017, val2017)
  detclip-bench eval --model ckpt/ --suite lvis-minival --data-map lvis=/mnt/coco
  # a transformers zero-shot detector on the mini world
  detclip-bench eval --model hf:path/to/owlv2 --suite mini-odinw13
  # your own COCO/Roboflow dataset (COCO AP on test, or val when there is no test split)
  detclip-bench eval --model ckpt/ --dataset ~/Downloads/widgets.v3i.coco --prompts "widget, gadget"
  # a lab's own multi-dataset suite, versioned in a file (docs/suites.md)
  detclip-bench eval --model ckpt/ --suite my_suite.yaml --data-root /data
  # several processes, each a shard of the images, merged exactly
  torchrun --nproc-per-node 2 -m detclip_bench.cli.main eval --model ckpt/ --suite mini-lvis

Each run gets its own folder (runs/eval/<suite>, then <suite>2, ...): an earlier run is never overwritten.
Re-running with the same model, suite and split re-scores cached predictions without running the model.
Every AP comes with a 95% image-bootstrap interval (--bootstrap 0: none); `detclip-bench compare RUN_A RUN_B`
gives the paired difference of two runs.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model on a suite",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("model and suite")
    g.add_argument("--model", required=True, help="detclip-bench checkpoint dir / hub id, or hf:<id or dir>")
    which = g.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", help="suite name (detclip-bench ls suites), or a suite file (.json/.yaml)")
    which.add_argument(
        "--dataset",
        metavar="SPEC",
        help="your own dataset: a Roboflow/COCO export folder "
        "(train/ valid/ test/), or train=A.json,val=B.json,test=C.json (images beside each json)",
    )
    g.add_argument(
        "--prompts",
        help="with --dataset: one prompt per category in id order, comma-separated (default: the category names)",
    )
    add_data_root_option(g)
    add_data_map_option(g)
    g.add_argument("--split", help="score another split than the suite's (e.g. test)")
    s = p.add_argument_group("evaluation settings")
    add_out_option(s, "default runs/eval/<suite>, or runs/eval/<suite>2, 3, ... when it holds a run")
    s.add_argument(
        "--exist-ok",
        action="store_true",
        help="write into an --out that already holds files, replacing its results (without --out: reuse "
        "runs/eval/<suite>)",
    )
    add_batch_size_option(s)
    add_workers_option(s)
    add_device_option(s)
    s.add_argument(
        "--no-cache",
        action="store_true",
        help=f"always re-run the model (default: predictions are cached in {CACHE_DIR}/, or in --out's cache/, "
        "keyed by the model's identity, suite version, prompts and budget, so a re-run re-scores them)",
    )
    add_bootstrap_options(s, default=DEFAULT_BOOTSTRAP)
    s.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an hf: adapter option, e.g. max_classes_per_chunk=40 (Grounding DINO, GLIP's chunked "
        "evaluation); recorded in results.json",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    import sys
    from pathlib import Path

    from detclip_bench.adapters.models import load_detector, parse_model_options
    from detclip_bench.dist import init_distributed
    from detclip_bench.io import run_out_dir
    from detclip_bench.suites import dataset_suite, get_suite, resolve_data_root
    from detclip_bench.suites.custom import parse_prompts
    from detclip_bench.suites.runner import evaluate_suite

    init_distributed()
    suite = (
        dataset_suite(args.dataset, finetune=False, prompts=parse_prompts(args.prompts))
        if args.dataset
        else get_suite(args.suite)
    )
    if suite.setting == "fine-tuned":
        print(
            f"error: {suite.name} fine-tunes per dataset; use `detclip-bench finetune --model ... --suite {suite.name}`",
            file=sys.stderr,
        )
        return 2
    root = resolve_data_root(suite, args.data_root, args.data_map)
    try:
        out = run_out_dir(args.out, exist_ok=args.exist_ok, default=f"{EVAL_DIR}/{suite.name}", replaces="its results")
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    detector = load_detector(args.model, device=args.device, options=parse_model_options(args.model_option))
    result = evaluate_suite(
        detector,
        suite,
        root,
        out_dir=out,
        cache_dir=None if args.no_cache else Path(CACHE_DIR) if args.out is None else out / "cache",
        batch_size=args.batch_size,
        workers=args.workers,
        split=args.split,
        bootstrap=bootstrap_from_args(args),
    )
    if result is not None:
        print(result.summary_line())
        print(f"results: {out / 'results.json'} (+ results.md, per-category CSV, predictions/)")
    return 0
