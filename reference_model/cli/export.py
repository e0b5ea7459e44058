"""``detclip-bench export``: freeze a vocabulary into a DetCLIPv2 checkpoint and export the image-only graph.

The work is :func:`reference_model.detclipv2.export.export_model`; this module only parses arguments.
"""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  detclip-bench export --model runs/mini/model --prompts "cat, red apple, bicycle" --out runs/export/cats
  detclip-bench export --model ckpt/ --vocab classes.txt --out runs/export/widgets --opset 19
  # every prompt of a suite (the union over its members), so `eval --model onnx:DIR --suite ...` runs on it
  detclip-bench export --model ckpt/ --suite mini-odinw13 --data-root mini_world --out runs/export/odinw
  detclip-bench eval --model onnx:runs/export/odinw --suite mini-odinw13 --data-root mini_world
  # the dynamo exporter and torch.export need a fixed input size (W x H, multiples of 32)
  detclip-bench export --model ckpt/ --prompts "cat, dog" --out runs/export/fixed --exporter dynamo --image-size 1344x800
  detclip-bench export --model ckpt/ --prompts "cat, dog" --out runs/export/ts --format torchscript

Writes DIR/model.onnx (or model.pt / model.pt2) and DIR/export.json: the frozen vocabulary (prompts,
category ids), the graph's input and outputs, and every pre/post-processing setting. The graph maps a
preprocessed, padded image batch (B, 3, H, W) to class_prob (B, K, M), centerness (B, K) and deltas (B, K, 4);
thresholding, per-level top-k, NMS and rescaling run outside it, the same code as the PyTorch model's predict.
After exporting, the graph is run on one or two inputs and compared with PyTorch (needs onnxruntime for ONNX).

ONNX and the deformable module: DeformConv exists in ONNX from opset 19 (the default). torchvision registers
no ONNX export for deform_conv2d; this verb maps it to DeformConv for the TorchScript-based exporter, and the
dynamo exporter has its own mapping. onnxruntime runs DeformConv on CPU from 1.25 (tested: 1.32); with an older
runtime, export a model trained with deformable=False (any opset) or use --format torchscript / torch-export.
"""


def add_parser(subparsers) -> None:
    from detclip_bench.cli.options import add_data_root_option, add_out_option

    p = subparsers.add_parser(
        "export",
        help="freeze a vocabulary into a DetCLIPv2 model and export ONNX / TorchScript",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="DetCLIPv2 checkpoint folder (save_pretrained) or hub id")
    v = p.add_mutually_exclusive_group(required=True)
    v.add_argument("--prompts", help='comma-separated prompts, e.g. "cat, red apple" (category ids 1..K)')
    v.add_argument(
        "--vocab",
        metavar="FILE",
        help="one prompt per line, a JSON list, or a COCO/LVIS json's categories (their ids kept)",
    )
    v.add_argument("--suite", help="every prompt of a suite, as its runner asks for them (union over its members)")
    add_data_root_option(p)
    add_out_option(p, "writes model.onnx / model.pt / model.pt2 and export.json", required=True)
    p.add_argument(
        "--format",
        choices=("onnx", "torchscript", "torch-export"),
        default="onnx",
        help="onnx (default), torchscript (torch.jit.trace) or torch-export (.pt2)",
    )
    p.add_argument(
        "--exporter",
        choices=("torchscript", "dynamo"),
        default="torchscript",
        help="--format onnx: the TorchScript-based torch.onnx exporter (default; dynamic batch, height and "
        "width) or the dynamo one (dynamic batch; needs --image-size)",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 19; ≥ 19 with the deformable module)")
    p.add_argument(
        "--image-size",
        metavar="WxH",
        help="fix the graph's input size (multiples of 32); every image is padded to it. Needed by "
        "--exporter dynamo and --format torch-export",
    )
    p.add_argument("--no-check", action="store_true", help="skip running the export against PyTorch afterwards")
    p.set_defaults(func=run)


def parse_image_size(text: str) -> tuple[int, int]:
    """``"1344x800"`` → ``(1344, 800)`` (width, height)."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--image-size must look like 1344x800 (width x height), got {text!r}")
    return int(parts[0]), int(parts[1])


def _next_step(args) -> str | None:
    """The command that runs this export (ONNX): on the suite it froze, or predict with the same prompts."""
    import shlex

    if args.format != "onnx":
        return None  # TorchScript / torch.export graphs are loaded with torch, not by a --model family
    if args.suite is not None:
        return f"detclip-bench eval --model onnx:{args.out} --suite {args.suite}"
    which = (
        f"--prompts {shlex.quote(args.prompts)}" if args.prompts is not None else f"--vocab {shlex.quote(args.vocab)}"
    )
    return f"detclip-bench predict --model onnx:{args.out} --images PHOTOS {which}"


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from detclip_bench.errors import DataError

    try:
        image_size = parse_image_size(args.image_size) if args.image_size else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from detclip_bench.predict.vocabulary import parse_prompts, read_vocab, suite_union_vocabulary

    members = None
    if args.suite is not None:
        from detclip_bench.suites import get_suite, resolve_data_root

        suite = get_suite(args.suite)
        vocab, members = suite_union_vocabulary(suite, resolve_data_root(suite, args.data_root))
    else:
        try:
            vocab = parse_prompts(args.prompts) if args.prompts is not None else read_vocab(args.vocab)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    prompts, ids, names = list(vocab.prompts), list(vocab.category_ids), list(vocab.names)

    from reference_model.detclipv2 import DetCLIPv2
    from reference_model.detclipv2.export import DEFAULT_OPSET, ExportError, export_model

    model = DetCLIPv2.from_pretrained(args.model)
    try:
        sidecar = export_model(
            model,
            prompts,
            args.out,
            format=args.format,
            exporter=args.exporter,
            opset=DEFAULT_OPSET if args.opset is None else args.opset,
            image_size=image_size,
            category_ids=ids,
            names=names,
            members=members,
            source=args.model,
            check=not args.no_check,
        )
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    check = sidecar["check"]
    worst = None if not check else max(v for c in check for v in c["max_abs_diff"].values())
    print(
        json.dumps(
            {
                "out": args.out,
                "file": sidecar["file"],
                "megabytes": round(sidecar["file_bytes"] / 1e6, 2),
                "format": sidecar["format"],
                "exporter": sidecar["exporter"],
                "opset": sidecar["opset"],
                "prompts": len(prompts),
                "check_max_abs_diff": worst,
                "run": _next_step(args),
            },
            indent=2,
        )
    )
    return 0
