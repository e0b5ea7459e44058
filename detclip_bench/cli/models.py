"""``detclip-bench models``: what ``--model`` can evaluate (the same listing as ``ls models``)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]

EXAMPLES = """examples:
  detclip-bench models                                           # every model family --model accepts
  detclip-bench eval --model runs/mini/checkpoint --suite mini-odinw13     # a DetCLIPv2 checkpoint
  detclip-bench eval --model hf:path/to/owlv2-dir --suite mini-odinw13     # a transformers detector

hf:<hub id> is read from the Hugging Face cache only; nothing is downloaded at run time.
"""


def run(args: argparse.Namespace) -> int:
    from detclip_bench.cli.ls import print_listing

    return print_listing("models")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models --model can evaluate",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=run)
