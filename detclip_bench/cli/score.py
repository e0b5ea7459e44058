"""``detclip-bench score``: score a COCO/LVIS results file against its GT json."""

from __future__ import annotations

import argparse

from detclip_bench.cli.options import add_bootstrap_options, add_out_option, out_file
from detclip_bench.errors import DataError
from detclip_bench.metrics.protocols import ALIASES, CLI_CHOICES

SCORE_FILE = "score.json"  # what `score --out DIR` writes into DIR

EPILOG = """examples:
  detclip-bench score --gt lvis_v1_minival.json --pred results.json --protocol lvis-fixed --out runs/score  # score.json
  detclip-bench score --gt lvis_v1_val.json --pred results.json --protocol lvis          # standard AP, 300/image
  detclip-bench score --gt odinw/aquarium/test.json --pred aquarium.json --protocol coco --max-dets 100
  detclip-bench score --gt lvis_v1_minival.json --pred results.json --protocol lvis-fixed --bootstrap 1000
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="score a results json (COCO AP, LVIS AP, LVIS Fixed AP)",
        description="Score a standard COCO/LVIS results file. The output always names the protocol: "
        "coco = pycocotools COCOeval; lvis = lvis-api standard AP (top 300 per image); "
        "lvis-fixed = Fixed AP (top K per category, no per-image cap).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--gt", required=True, help="GT json (COCO or LVIS v1 layout)")
    p.add_argument("--pred", required=True, help="results json: list of {image_id, category_id, bbox xywh, score}")
    p.add_argument(
        "--protocol",
        required=True,
        choices=CLI_CHOICES,
        help="aliases: " + ", ".join(f"{a} = {p}" for a, p in ALIASES.items()),
    )
    add_out_option(p, f"writes {SCORE_FILE}: metrics, protocol, K, counts, per-category table")
    p.add_argument("--topk", type=int, default=None, help="lvis-fixed: detections kept per category (default 10000)")
    p.add_argument(
        "--max-dets",
        type=int,
        default=None,
        help="per-image cap across categories (lvis default 300; coco default none, i.e. pycocotools as is)",
    )
    add_bootstrap_options(p, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from detclip_bench.io import atomic_write_text
    from detclip_bench.metrics import score_files

    try:
        result = score_files(
            args.gt,
            args.pred,
            args.protocol,
            topk_per_category=args.topk,
            max_dets_per_image=args.max_dets,
            bootstrap=args.bootstrap,
            bootstrap_seed=args.bootstrap_seed,
        )
    except ValueError as exc:
        if type(exc) is not ValueError:
            raise
        print(f"error: {exc}")
        return 2
    print(result.to_markdown())
    print(result.summary_line())
    out = out_file(args.out, SCORE_FILE, verb="score")
    if out is not None:
        try:
            atomic_write_text(out, result.to_json() + "\n")
        except OSError as exc:
            raise DataError(str(out), "--out", f"cannot write the result ({exc.strerror or exc})") from exc
    return 0
