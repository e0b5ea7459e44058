"""Command-line options that several verbs share, declared once so every verb's help says the same.

The vocabulary (README "Command line"): ``--data-root DIR`` (never ``--root``), ``--data-map``, ``--device``
(default ``auto``), ``--batch-size`` (default 4, inference only), ``--out DIR`` (always a folder), and a run
folder is the positional ``RUN_DIR``.
"""

from __future__ import annotations

import argparse

__all__ = [
    "BATCH_SIZE_DEFAULT",
    "DEVICE_DEFAULT",
    "HIDDEN_ALIASES",
    "add_batch_size_option",
    "add_bootstrap_options",
    "add_data_map_option",
    "add_data_root_option",
    "add_device_option",
    "add_hidden_alias",
    "add_out_option",
    "add_run_dir_argument",
    "add_workers_option",
    "bootstrap_from_args",
    "out_file",
    "run_dir_from_args",
]


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


# ----------------------------------------------------------------------------------------------- one vocabulary
# Each option several verbs share has one spelling, one default and one help text, declared here and nowhere else
# (issue 27 point 8; tests/cli/test_flag_vocabulary.py walks every verb's parser and holds them to it). Old
# spellings still parse, hidden from --help, for one release: HIDDEN_ALIASES names each and what replaced it.

DEVICE_DEFAULT = "auto"
DEVICE_HELP = "auto (default): CUDA when available, else the CPU; or cpu, cuda, cuda:N"
BATCH_SIZE_DEFAULT = 4
BATCH_SIZE_HELP = f"images per forward pass at inference (default {BATCH_SIZE_DEFAULT}; the scores do not depend on it)"
WORKERS_HELP = (
    "processes reading and preparing images ahead of the model (default auto: for a model on CUDA one fewer "
    "than the CPU cores, at most 8; none for a model on the CPU or below 32 images; the scores do not depend on it)"
)
DATA_ROOT_DEFAULT_HELP = "$DETCLIP_BENCH_DATA, or $DETCLIP_BENCH_MINI for mini suites; else ./data, ./mini_world"
DATA_MAP_HELP = (
    "per-dataset folders in our, GLIP's or mmdetection's layout, e.g. lvis=/mnt/coco,odinw=/mnt/odinw "
    "(repeatable; `detclip-bench data validate FOLDER` shows what each holds)"
)
OUT_HELP_PREFIX = "output folder"
RUN_DIR_HELP = "run folder written by `detclip-bench eval` (its --out: results.json, predictions/, ...)"
# old spelling -> what replaced it (hidden from --help, still parsed; to be removed in the release after next)
HIDDEN_ALIASES = {
    "--root": "--data-root (data download, data verify)",
    "--results": "the RUN_DIR argument (analyze, report); --store (leaderboard)",
}


def add_data_root_option(parser, *, default_help: str = DATA_ROOT_DEFAULT_HELP, old: tuple[str, ...] = ()) -> None:
    """``--data-root DIR``; ``default_help`` only where a verb's default really differs (say which, in words).

    ``old``: earlier spellings kept as hidden aliases (same dest)."""
    parser.add_argument("--data-root", metavar="DIR", default=None, help=f"data root (default: {default_help})")
    for flag in old:
        add_hidden_alias(parser, flag, dest="data_root")


def add_data_map_option(parser) -> None:
    """``--data-map NAME=FOLDER[,...]`` (repeatable): a dataset read from its own folder."""
    parser.add_argument("--data-map", action="append", default=[], metavar="NAME=FOLDER[,...]", help=DATA_MAP_HELP)


def add_device_option(parser) -> None:
    """``--device``, ``auto`` everywhere: a newcomer's laptop runs on its CPU, a GPU machine on its GPU."""
    parser.add_argument("--device", default=DEVICE_DEFAULT, metavar="DEVICE", help=DEVICE_HELP)


def add_batch_size_option(parser) -> None:
    """``--batch-size N``: images per inference forward pass (training batches are the recipe's, ``--set``)."""
    parser.add_argument("--batch-size", type=_positive, default=BATCH_SIZE_DEFAULT, metavar="N", help=BATCH_SIZE_HELP)


def add_workers_option(parser) -> None:
    """``--workers N|auto``: DataLoader workers of the prediction loop (``auto`` is stored as None)."""
    parser.add_argument("--workers", type=_workers, default=None, metavar="N", help=WORKERS_HELP)


def _workers(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"--workers must be 'auto' or a number of processes (0 or more), got {text}")
    return value


def add_out_option(parser, what: str, *, default: str | None = None, required: bool = False) -> None:
    """``--out DIR``: always a folder. ``what``: the parenthetical after "output folder", e.g. its default or what
    the verb writes in it."""
    parser.add_argument("--out", metavar="DIR", default=default, required=required, help=f"{OUT_HELP_PREFIX} ({what})")


def add_run_dir_argument(parser) -> None:
    """The run folder a verb reads (``eval``'s ``--out``): positional ``RUN_DIR``; ``--results`` is its old spelling."""
    parser.add_argument(
        "run_dir",
        nargs="?",
        default=argparse.SUPPRESS,  # absent: --results may have set it (argparse would overwrite it with None)
        metavar="RUN_DIR",
        help=RUN_DIR_HELP,
    )
    add_hidden_alias(parser, "--results", dest="run_dir")


def run_dir_from_args(args):
    """``RUN_DIR`` (or the old ``--results``); None after printing a usage error when neither was given."""
    import sys

    run_dir = getattr(args, "run_dir", None)
    if run_dir is None:
        print("error: name the run folder: RUN_DIR, a folder written by `detclip-bench eval`", file=sys.stderr)
    return run_dir


def add_hidden_alias(parser, flag: str, *, dest: str, **kwargs) -> None:
    """An old spelling that still parses into ``dest`` but is not shown in --help (kept for one release)."""
    if flag not in HIDDEN_ALIASES:
        raise ValueError(f"{flag}: add it to HIDDEN_ALIASES with what replaced it")
    parser.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def out_file(out: str | None, name: str, *, verb: str):
    """The file a one-file verb writes for ``--out``: ``out/name`` for a folder. An ``--out`` ending in ``name``'s
    suffix that is not an existing folder is the old spelling (the file itself): still written there, with a note.
    """
    import sys
    from pathlib import Path

    if out is None:
        return None
    path = Path(out)
    suffix = Path(name).suffix.lower()
    if suffix and path.suffix.lower() == suffix and not path.is_dir():
        print(
            f"note: --out {out}: --out names a folder now ({verb} writes {name} in it); a file path still works "
            "in this release",
            file=sys.stderr,
        )
        return path
    return path / name


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
