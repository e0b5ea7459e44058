"""The one protocol vocabulary: canonical names, descriptions, CLI aliases and the evaluator factory.

Every part of the toolkit that names a protocol (results files, ``detclip-bench score``, suites, the
leaderboards, the PR curves) takes its names from here, so a protocol cannot be spelled two ways.

``lvis-ar`` is paper-only: papers report it and the leaderboards show it, but this toolkit does not
compute it, so :func:`make_evaluator` refuses it and :class:`~detclip_bench.metrics.results.EvalResult`
never carries it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from detclip_bench.metrics.gt import GroundTruth
    from detclip_bench.metrics.streaming import StreamingEvaluator

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
    "make_evaluator",
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


def make_evaluator(
    gt: dict | str | os.PathLike | GroundTruth,
    protocol: str,
    *,
    topk_per_category: int | None = None,
    max_dets_per_image: int | None = None,
    pool_per_category: int | None = None,
) -> StreamingEvaluator:
    """The streaming evaluator of ``protocol`` (canonical name or alias) on ``gt``.

    * ``coco``: ``max_dets_per_image`` caps detections per image across categories (default None: no cap,
      i.e. pycocotools on the detections as given).
    * ``lvis-standard``: lvis-api's per-image cap, ``max_dets_per_image`` (default 300).
    * ``lvis-fixed``: the ``topk_per_category`` best detections per category over the split (default 10000)
      and **no per-image cap** (Dave et al. 2021), so ``max_dets_per_image`` is refused here.

    ``topk_per_category`` belongs to Fixed AP alone and is refused for the other protocols, as is
    ``pool_per_category`` (detections held per category, >= K, so that a bootstrap can look past the K-th). A suite's
    ``max_dets_per_image`` is the model's output budget (applied at prediction time); scoring a suite passes
    it only to the protocols that cap per image.
    """
    # deferred: import cycle with coco_ap/lvis_ap (they import results, which imports this module)
    from detclip_bench.metrics.coco_ap import CocoEvaluator
    from detclip_bench.metrics.lvis_ap import LvisEvaluator

    protocol = canonical_protocol(protocol)
    if protocol in PAPER_ONLY:
        raise ValueError(f"{protocol} is a paper-only protocol ({PROTOCOLS[protocol]}); there is no evaluator for it")
    if protocol == "lvis-fixed":
        if max_dets_per_image is not None:
            raise ValueError("lvis-fixed has no per-image cap (Dave et al. 2021); set topk_per_category (--topk)")
        k = DEFAULT_TOPK_PER_CATEGORY if topk_per_category is None else topk_per_category
        return LvisEvaluator(gt, protocol="fixed", topk_per_category=k, pool_per_category=pool_per_category)
    if topk_per_category is not None:
        raise ValueError(f"topk_per_category (--topk) applies to lvis-fixed only, not {protocol}")
    if pool_per_category is not None:
        raise ValueError(f"pool_per_category applies to lvis-fixed only, not {protocol}")
    if protocol == "coco":
        return CocoEvaluator(gt, max_dets_per_image=max_dets_per_image)
    cap = DEFAULT_LVIS_MAX_DETS if max_dets_per_image is None else max_dets_per_image
    return LvisEvaluator(gt, protocol="standard", max_dets_per_image=cap)
