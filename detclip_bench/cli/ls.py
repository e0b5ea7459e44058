"""``detclip-bench ls models|formats|suites|recipes|tables``: what each registry knows.

Registries live in modules written by different parts of the project; a module that does not
exist yet is skipped quietly (found with importlib, never by catching arbitrary import errors).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

__all__ = ["REGISTRY_LOCATIONS", "add_parser", "list_names", "print_listing", "run"]

EXAMPLES = """examples:
  detclip-bench ls models       # DetCLIPv2 checkpoints and the hf:<model> architectures
  detclip-bench ls suites
  detclip-bench ls formats
  detclip-bench ls recipes
"""

# what -> candidate "module:attr" locations of its Registry or dict (first one that exists wins)
REGISTRY_LOCATIONS: dict[str, tuple[str, ...]] = {
    "models": ("detclip_bench.adapters.registry:MODELS",),
    "formats": ("detclip_bench.datasets.registry:DATASET_FORMATS", "detclip_bench.datasets:DATASET_FORMATS"),
    "suites": ("detclip_bench.suites.registry:SUITES", "detclip_bench.suites:SUITES"),
    "recipes": ("recipes.registry:RECIPES", "recipes:RECIPES"),
    "tables": ("recipes:EXPERIMENTS",),
}

MODEL_USAGE = {
    "detclipv2": "--model <checkpoint dir or hub id>",
}


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _find_registry(what: str):
    for location in REGISTRY_LOCATIONS[what]:
        module, attr = location.split(":")
        if _module_exists(module):
            registry = getattr(importlib.import_module(module), attr, None)
            if registry is not None:
                return registry
    return None


def list_names(what: str) -> list[str]:
    registry = _find_registry(what)
    if registry is not None:
        return sorted(registry)  # a Registry iterates its names; a plain dict its keys
    return []


def print_listing(what: str) -> int:
    """Print one registry's names (models with how to pass them to ``--model``); shared with ``models``."""
    names = list_names(what)
    if not names:
        print(f"no {what} registered yet")
        return 0
    for name in names:
        if what == "models":
            usage = MODEL_USAGE.get(name, f"--model hf:<hub id or dir>  (config model_type {name!r})")
            print(f"{name:20s} {usage}")
        else:
            print(name)
    return 0


def run(args: argparse.Namespace) -> int:
    return print_listing(args.what)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "ls",
        help="list models, dataset formats, suites or recipes",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=sorted(REGISTRY_LOCATIONS), help="which registry to list")
    parser.set_defaults(func=run)
