"""Named, versioned benchmarks (lm-eval-harness "tasks" as typed data).

``SUITES.get(name)`` returns a :class:`Suite`; ``detclip-bench ls suites`` lists them. :func:`get_suite`
also reads a suite file (JSON/YAML, :mod:`detclip_bench.suites.custom`) when ``name`` is one.
"""

from __future__ import annotations

from detclip_bench.registry import Registry
from detclip_bench.suites.custom import dataset_suite, is_suite_file, load_suite_file
from detclip_bench.suites.lvis import lvis_suite
from detclip_bench.suites.odinw import odinw13_suite
from detclip_bench.suites.suite import EvalTarget, Suite, SuiteMember, resolve_data_root

__all__ = [
    "SUITES",
    "EvalTarget",
    "Suite",
    "SuiteMember",
    "dataset_suite",
    "get_suite",
    "load_suite_file",
    "resolve_data_root",
]

SUITES: Registry[Suite] = Registry("suite")
SUITES.add("lvis-minival", lvis_suite("lvis-minival", minival=True, mini=False))
SUITES.add("lvis-val", lvis_suite("lvis-val", minival=False, mini=False))
SUITES.add("mini-lvis", lvis_suite("mini-lvis", minival=True, mini=True))
SUITES.add("mini-lvis-val", lvis_suite("mini-lvis-val", minival=False, mini=True))
SUITES.add("odinw13", odinw13_suite("odinw13", finetune=False, mini=False))
SUITES.add("odinw13-finetune", odinw13_suite("odinw13-finetune", finetune=True, mini=False))
SUITES.add("mini-odinw13", odinw13_suite("mini-odinw13", finetune=False, mini=True))
SUITES.add("mini-odinw13-finetune", odinw13_suite("mini-odinw13-finetune", finetune=True, mini=True))


def get_suite(name: str) -> Suite:
    """A registered suite by name, or the suite a ``.json``/``.yaml`` suite file defines."""
    if is_suite_file(name):
        return load_suite_file(name)
    return SUITES.get(name)
