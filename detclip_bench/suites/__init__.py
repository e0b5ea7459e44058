"""Named, versioned benchmarks (lm-eval-harness "tasks" as typed data).

``SUITES.get(name)`` returns a :class:`Suite`; ``detclip-bench ls suites`` lists them.
"""

from __future__ import annotations

from detclip_bench.registry import Registry
from detclip_bench.suites.lvis import lvis_suite
from detclip_bench.suites.odinw import odinw13_suite
from detclip_bench.suites.suite import EvalTarget, Suite, SuiteMember, resolve_data_root

__all__ = ["SUITES", "EvalTarget", "Suite", "SuiteMember", "get_suite", "resolve_data_root"]

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
    return SUITES.get(name)
