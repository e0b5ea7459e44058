"""Command-line options that several verbs share, declared once so every verb's help says the same."""

from __future__ import annotations

import argparse

__all__ = ["add_bootstrap_options", "bootstrap_from_args"]


def add_bootstrap_options(parser, *, default: int) -> None:
    """``--bootstrap N`` and ``--bootstrap-seed S``: image-bootstrap intervals beside every AP."""
    parser.add_argument(
        "--bootstrap",
        type=_replicates,
        default=default,
        metavar="N",
        help=f"image resamples for a 95%% interval beside every AP (default {default}"
        + (": off" if default == 0 else "; 0 turns intervals off")
        + "; docs/eval.md §7 says what an interval covers)",
    )
    parser.add_argument(
        "--bootstrap-seed", type=int, default=0, metavar="S", help="seed of the image resamples (default 0; recorded)"
    )


def _replicates(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"--bootstrap must be 0 (off) or a number of resamples, got {value}")
    return value


def bootstrap_from_args(args):
    """The :class:`~detclip_bench.suites.runner.Bootstrap` the options ask for, None for ``--bootstrap 0``."""
    from detclip_bench.suites.runner import Bootstrap

    return Bootstrap(args.bootstrap, args.bootstrap_seed) if args.bootstrap else None
