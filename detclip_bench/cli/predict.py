"""``detclip-bench predict``: run any ``--model`` on image files and write COCO results plus drawn pictures.

The work is :func:`detclip_bench.predict.run.predict_images`; this module only parses arguments.
"""

from __future__ import annotations

import argparse

# the verb's defaults, stated once for --help and the run (the module itself imports nothing heavy)
DEFAULT_OUT = "runs/predict"
DEFAULT_VIS_THRESHOLD = 0.3

EXAMPLES = """examples:
  detclip-bench predict --model runs/mini/model --images photos/ --prompts "cat, red apple, bicycle"
  detclip-bench predict --model hf:path/to/owlv2 --images 'shots/**/*.png' --vocab classes.txt --threshold 0.2
  # the mini-lvis suite's prompts and ids, scored afterwards against the same GT
  detclip-bench predict --model ckpt/ --suite mini-lvis --data-root mini_world \\
      --images mini_world/coco/val2017 --image-ids-from mini_world/lvis/lvis_v1_minival.json --out runs/p
  detclip-bench score --gt mini_world/lvis/lvis_v1_minival.json --pred runs/p/predictions.json --protocol lvis-fixed

Writes predictions.json (COCO results: {image_id, category_id, bbox [x,y,w,h] in original pixels, score}),
inputs.json (COCO images + categories for those ids), run_info.json and vis/<stem>.jpg (only boxes scoring
above --vis-threshold drawn; predictions.json keeps every one above --threshold).
Images are read upright: a photo's EXIF Orientation is applied first, so sizes and boxes are in the frame a
phone shows and COCO tools label in.
Output: runs/predict, then runs/predict2, runs/predict3, ... on re-runs; an --out folder that already holds
files is refused unless --exist-ok (its old vis/ pictures are then replaced). Input files inside the output
folder are never predicted on (skipped and counted).
Category ids: the json's / suite's ids for --vocab COCO/LVIS json and --suite, else 1..K in prompt order.
Image ids: 1..N in sorted path order, or the ids of --image-ids-from's images matched by file name.
An unreadable image is skipped with a warning and counted; if none can be read, the exit code is 1.
"""


def add_parser(sub) -> None:
    from detclip_bench.cli.options import (
        add_batch_size_option,
        add_data_root_option,
        add_device_option,
        add_out_option,
        add_workers_option,
    )

    p = sub.add_parser(
        "predict",
        help="run a model on image files: COCO results json + drawn pictures",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("model and inputs")
    g.add_argument("--model", required=True, help="detclip-bench checkpoint dir / hub id, or hf:<id or dir>")
    g.add_argument(
        "--images",
        required=True,
        nargs="+",
        metavar="PATH",
        help="image files, folders (recursive) or globs (quote them; ** recurses)",
    )
    v = g.add_mutually_exclusive_group(required=True)
    v.add_argument("--prompts", help='comma-separated prompts, e.g. "cat, red apple" (category ids 1..K)')
    v.add_argument(
        "--vocab",
        metavar="FILE",
        help="one prompt per line, a JSON list, or a COCO/LVIS json's categories (their ids kept)",
    )
    v.add_argument("--suite", help="a suite's vocabulary, prompts and ids (its first member's annotation file)")
    add_data_root_option(g)
    g.add_argument(
        "--image-ids-from",
        metavar="COCO_JSON",
        help="take image ids from this COCO/LVIS json's images, matched by file name",
    )
    s = p.add_argument_group("settings")
    s.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="drop detections scoring at or below it (default: the suite's with --suite, else the model's)",
    )
    s.add_argument(
        "--max-dets",
        type=int,
        default=None,
        help="detections kept per image (default: the suite's with --suite, else 100)",
    )
    s.add_argument(
        "--vis-threshold",
        type=float,
        default=DEFAULT_VIS_THRESHOLD,
        help=f"draw only detections scoring above it (default {DEFAULT_VIS_THRESHOLD}; predictions.json keeps all)",
    )
    add_out_option(s, f"default {DEFAULT_OUT}, or {DEFAULT_OUT}2, {DEFAULT_OUT}3, ... when it holds a run")
    s.add_argument(
        "--exist-ok",
        action="store_true",
        help=f"write into an --out that already holds files (without --out: reuse {DEFAULT_OUT}); its old vis/ "
        "pictures are removed",
    )
    add_batch_size_option(s)
    add_workers_option(s)
    add_device_option(s)
    s.add_argument("--no-draw", action="store_true", help="skip the vis/ pictures")
    p.set_defaults(func=run)


def _device_used(detector, requested: str) -> str:
    """Where the model actually ran: a torch model's parameters, else the detector's own ``device``, else
    what ``--device`` resolves to."""
    import torch

    from detclip_bench.dist import resolve_device

    if isinstance(detector, torch.nn.Module):
        weight = next(detector.parameters(), None)
        if weight is not None:
            return str(weight.device)
    own = getattr(detector, "device", None)
    return str(own) if own else resolve_device(requested)


def run(args) -> int:
    import logging
    import sys

    from detclip_bench.adapters.models import load_detector
    from detclip_bench.errors import DataError
    from detclip_bench.predict.images import collect_images, image_ids_from, outside_folder, predict_out_dir
    from detclip_bench.predict.run import predict_images
    from detclip_bench.predict.vocabulary import parse_prompts, read_vocab, suite_vocabulary
    from detclip_bench.suites import get_suite, resolve_data_root

    if args.threshold is not None and not 0 <= args.threshold < 1:
        print(f"error: --threshold must be in [0, 1), got {args.threshold}", file=sys.stderr)
        return 2
    if not 0 <= args.vis_threshold <= 1:
        print(f"error: --vis-threshold must be in [0, 1], got {args.vis_threshold}", file=sys.stderr)
        return 2
    for name in ("max_dets", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    threshold, max_dets = args.threshold, args.max_dets
    if args.prompts is not None:
        try:
            vocab = parse_prompts(args.prompts)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.vocab is not None:
        vocab = read_vocab(args.vocab)
    else:
        suite = get_suite(args.suite)
        vocab = suite_vocabulary(suite, resolve_data_root(suite, args.data_root))
        threshold = suite.score_threshold if threshold is None else threshold
        max_dets = suite.max_dets_per_image if max_dets is None else max_dets
    threshold_from = "--threshold" if args.threshold is not None else None if threshold is None else "the suite"
    try:
        out = predict_out_dir(args.out, exist_ok=args.exist_ok, default=DEFAULT_OUT)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths, inside = outside_folder(collect_images(args.images), out)  # never a run's own drawings
    if inside:
        logging.getLogger("detclip_bench.predict").warning(
            "not predicting on %d file(s) inside the output folder %s", len(inside), out
        )
    if not paths:
        print(f"error: every input image ({len(inside)}) is inside the output folder {out}", file=sys.stderr)
        return 2
    ids = image_ids_from(args.image_ids_from, paths) if args.image_ids_from else None
    detector = load_detector(args.model, device=args.device)
    info = {
        "model_spec": args.model,
        "device": _device_used(detector, args.device),
        "device_requested": args.device,
        "image_ids_from": args.image_ids_from,
        "out": str(out),
        "inputs_inside_out": len(inside),
        **({"score_threshold_from": threshold_from} if threshold_from else {}),
    }
    result = predict_images(
        detector,
        paths,
        vocab,
        image_ids=ids,
        score_thresh=threshold,
        max_dets=100 if max_dets is None else max_dets,
        batch_size=args.batch_size,
        workers=args.workers,
        out_dir=out,
        draw=not args.no_draw,
        vis_thresh=args.vis_threshold,
        info=info,
    )
    print(result.summary_line() + f" -> {out}/predictions.json")
    return 0
