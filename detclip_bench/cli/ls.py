"""``detclip-bench ls models|formats|suites|recipes|tables``: what each registry knows.

The core lists its own registries (models, dataset formats, suites); packages built on it add
listings through the ``detclip_bench.listings`` entry-point group (``recipes`` and ``tables`` come
from the ``recipes`` package), so the core never imports them.
"""

from __future__ import annotations

import argparse
import importlib
from importlib.metadata import entry_points

__all__ = ["CORE_LISTINGS", "LISTING_GROUP", "add_parser", "list_names", "listings", "print_listing", "run"]

EXAMPLES = """examples:
  detclip-bench ls models       # DetCLIPv2 checkpoints and the hf:<model> architectures
  detclip-bench ls suites       # each with what it scores and on which data
  detclip-bench ls formats
  detclip-bench ls recipes
"""

LISTING_GROUP = "detclip_bench.listings"
# what -> "module:attr" of a Registry or dict whose names are listed
CORE_LISTINGS: dict[str, str] = {
    "models": "detclip_bench.adapters.models:MODELS",
    "formats": "detclip_bench.datasets:DATASET_FORMATS",
    "suites": "detclip_bench.suites:SUITES",
}


def listings() -> dict[str, str]:
    """The core's listings plus those registered in the ``detclip_bench.listings`` group."""
    return {**CORE_LISTINGS, **{ep.name: ep.value for ep in entry_points(group=LISTING_GROUP)}}


def list_names(what: str) -> list[str]:
    module, attr = listings()[what].split(":")
    return sorted(getattr(importlib.import_module(module), attr))  # a Registry iterates names, a dict its keys


def _model_usage(name: str) -> str:
    from detclip_bench.adapters.models import DEFAULT_FAMILY, checkpoint_families

    if name == DEFAULT_FAMILY:
        return "--model <checkpoint dir or hub id>"
    if name in checkpoint_families():
        return f"--model {name}:<folder>  (a checkpoint family registered by an installed package)"
    return f"--model hf:<hub id or dir>  (config model_type {name!r})"


def _suite_description(name: str) -> str:
    from detclip_bench.suites import get_suite

    return get_suite(name).description


def print_listing(what: str) -> int:
    """Print one registry's names, with what each is where a name alone does not say it: models with how to
    pass them to ``--model`` (shared with ``models``), suites with what they score. Other listings print bare
    names, one a line, for scripts."""
    import textwrap

    describe = {"models": _model_usage, "suites": _suite_description}.get(what)
    names = list_names(what)
    width = max((len(n) for n in names), default=0) + 2
    for name in names:
        if describe is None:
            print(name)
            continue
        lines = textwrap.wrap(describe(name), width=max(40, 118 - width), break_on_hyphens=False) or [""]
        print(f"{name:{width}s}{lines[0]}")
        for line in lines[1:]:
            print(" " * width + line)
    return 0


def run(args: argparse.Namespace) -> int:
    return print_listing(args.what)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "ls",
        help="list models, dataset formats, suites, recipes or tables",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=sorted(listings()), help="which registry to list")
    parser.set_defaults(func=run)
