"""Named, versioned benchmarks (lm-eval-harness "tasks" as typed data).

``SUITES.get(name)`` returns a :class:`Suite`; ``detclip-bench ls suites`` lists them. Every built-in suite is a
data file in ``detclip_bench/suites/builtin/`` (``<name>.yaml``), read on first use by the loader a lab's own suite
file goes through (:mod:`detclip_bench.suites.custom`, docs/suites.md). :func:`get_suite` also reads a suite file
when ``name`` is one.
"""

from __future__ import annotations

from pathlib import Path

from detclip_bench.registry import Registry
from detclip_bench.suites.custom import dataset_suite, is_suite_file, load_suite_file
from detclip_bench.suites.suite import EvalTarget, Suite, SuiteMember, resolve_data_root

__all__ = [
    "BUILTIN_DIR",
    "SUITES",
    "EvalTarget",
    "Suite",
    "SuiteMember",
    "dataset_suite",
    "get_suite",
    "load_suite_file",
    "resolve_data_root",
]

#: the built-in suites' files, one per suite, named after it
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"


def _builtin_suite(path: Path) -> Suite:
    suite = load_suite_file(path, builtin=True)
    if suite.name != path.stem:
        raise ValueError(f"{path} defines suite {suite.name!r}; a built-in suite file is named after its suite")
    return suite


SUITES: Registry[Suite] = Registry("suite", load_file=_builtin_suite)
for _file in sorted(BUILTIN_DIR.glob("*.yaml")):
    SUITES.add(_file.stem, _file)


def get_suite(name: str) -> Suite:
    """A registered suite by name, or the suite a ``.json``/``.yaml`` suite file defines."""
    if is_suite_file(name):
        return load_suite_file(name)
    return SUITES.get(name)
