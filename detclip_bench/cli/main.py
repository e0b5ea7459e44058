"""Entry point of ``detclip-bench``: verb-first subcommands, each in its own module.

Every verb module exposes ``add_parser(subparsers)`` (which registers its parser and sets
``func``) and keeps heavy imports inside the function that runs it, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from detclip_bench.errors import DataError

# verb -> module; listed here (not discovered) so the order in --help is deliberate.
VERBS: dict[str, str] = {
    "data": "detclip_bench.cli.data",
    "score": "detclip_bench.cli.score",
    "train": "detclip_bench.cli.train",
    "finetune": "detclip_bench.cli.finetune",
    "eval": "detclip_bench.cli.eval",
    "reproduce": "detclip_bench.cli.reproduce",
    "analyze": "detclip_bench.cli.analyze",
    "report": "detclip_bench.cli.report",
    "leaderboard": "detclip_bench.cli.leaderboard",
    "models": "detclip_bench.cli.models",
    "ls": "detclip_bench.cli.ls",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detclip-bench",
        description="Open-vocabulary detection data loaders, exact benchmarks and a DetCLIPv2 reference model.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for _verb, module in VERBS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue  # verb not built yet
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:
        if exc.args and str(exc.args[0]).startswith("unknown "):
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
