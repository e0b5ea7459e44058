"""Entry point of ``detclip-bench``: verb-first subcommands, each in its own module.

The benchmark core's verbs live in :mod:`detclip_bench.cli`. Verbs that need a model family or the
paper's recipes (``train``, ``finetune``, ``reproduce``, ``leaderboard``) are contributed by the
packages that own them through the ``detclip_bench.verbs`` entry-point group (``pyproject.toml`` is
the composition layer), so the core never imports ``reference_model``, ``recipes`` or
``leaderboards``. Every verb module exposes ``add_parser(subparsers)``, which registers its parser and
sets ``func``, and keeps heavy imports inside the function that runs it so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import entry_points

from detclip_bench.errors import DataError, UnknownNameError

__all__ = ["CORE_VERBS", "VERB_GROUP", "VERB_ORDER", "build_parser", "main", "verb_modules"]

VERB_GROUP = "detclip_bench.verbs"
# the benchmark core's own verbs: verb -> module
CORE_VERBS: dict[str, str] = {
    "data": "detclip_bench.cli.data",
    "score": "detclip_bench.cli.score",
    "eval": "detclip_bench.cli.eval",
    "predict": "detclip_bench.cli.predict",
    "analyze": "detclip_bench.cli.analyze",
    "report": "detclip_bench.cli.report",
    "compare": "detclip_bench.cli.compare",
    "models": "detclip_bench.cli.models",
    "ls": "detclip_bench.cli.ls",
}
# the order of --help: the workflow from data to leaderboard; verbs not named here come last, sorted
VERB_ORDER = (
    "data",
    "score",
    "train",
    "finetune",
    "eval",
    "predict",
    "export",
    "reproduce",
    "compare",
    "analyze",
    "report",
    "leaderboard",
    "models",
    "ls",
)


def verb_modules() -> dict[str, str]:
    """Every verb → its module: the core's, then those registered in the ``detclip_bench.verbs`` group."""
    modules = dict(CORE_VERBS)
    for ep in entry_points(group=VERB_GROUP):
        if ep.name in modules and modules[ep.name] != ep.value:
            raise RuntimeError(f"verb {ep.name!r} is registered twice: {modules[ep.name]} and {ep.value}")
        modules[ep.name] = ep.value
    rank = {verb: i for i, verb in enumerate(VERB_ORDER)}
    return dict(sorted(modules.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detclip-bench",
        description="Open-vocabulary detection data loaders, exact benchmarks and a DetCLIPv2 reference model.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module in verb_modules().values():
        importlib.import_module(module).add_parser(sub)
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
    except UnknownNameError as exc:  # a name no registry or table knows: a usage error, like argparse's
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
