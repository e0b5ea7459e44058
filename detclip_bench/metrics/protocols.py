"""The one protocol vocabulary: canonical names, descriptions and CLI aliases.

Every part of the toolkit that names a protocol (results files, ``detclip-bench score``, suites, the
leaderboards, the PR curves) takes its names from here, so a protocol cannot be spelled two ways.

``lvis-ar`` is paper-only: papers report it and the leaderboards show it, but this toolkit does not
compute it, so :func:`~detclip_bench.metrics.factory.make_evaluator` refuses it and
:class:`~detclip_bench.metrics.results.EvalResult` never carries it.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ALIASES",
    "CLI_CHOICES",
    "COMPUTED_PROTOCOLS",
    "DEFAULT_TOPK_PER_CATEGORY",
    "PAPER_ONLY",
    "PROTOCOLS",
    "ComputedProtocol",
    "Protocol",
    "canonical_protocol",
]

#: every protocol name a result, suite or leaderboard row may carry
Protocol = Literal["coco", "lvis-standard", "lvis-fixed", "lvis-ar"]
#: the protocols this toolkit computes (what suites may list and what EvalResult carries)
ComputedProtocol = Literal["coco", "lvis-standard", "lvis-fixed"]

PROTOCOLS: dict[str, str] = {
    "coco": "COCO bbox AP (pycocotools semantics)",
    "lvis-standard": "LVIS standard AP (lvis-api: top-300 detections per image)",
    "lvis-fixed": "LVIS Fixed AP (Dave et al. 2021: top-K detections per category, no per-image cap)",
    "lvis-ar": "LVIS average recall (paper-only: reported by papers, not computed by this toolkit)",
}
PAPER_ONLY: frozenset[str] = frozenset({"lvis-ar"})
COMPUTED_PROTOCOLS: tuple[str, ...] = tuple(p for p in PROTOCOLS if p not in PAPER_ONLY)
#: accepted spellings on the command line → canonical name
ALIASES: dict[str, str] = {"lvis": "lvis-standard"}
#: ``detclip-bench score --protocol`` choices: the computed protocols and their aliases
CLI_CHOICES: tuple[str, ...] = (*COMPUTED_PROTOCOLS, *(a for a, p in ALIASES.items() if p in COMPUTED_PROTOCOLS))

DEFAULT_TOPK_PER_CATEGORY = 10000  # Fixed AP's K (Dave et al. 2021)
DEFAULT_LVIS_MAX_DETS = 300  # lvis-api's per-image cap for standard AP


def canonical_protocol(name: str) -> str:
    """The canonical name of ``name`` (aliases such as ``lvis`` resolved); ValueError on an unknown name."""
    name = ALIASES.get(name, name)
    if name not in PROTOCOLS:
        known = ", ".join([*PROTOCOLS, *(f"{a} (= {p})" for a, p in ALIASES.items())])
        raise ValueError(f"unknown protocol {name!r}; known protocols: {known}")
    return name
