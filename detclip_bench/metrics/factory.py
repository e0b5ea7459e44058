"""The evaluator factory: a protocol's name (and budget) to its streaming evaluator.

Apart from :mod:`detclip_bench.metrics.protocols` (the names), which the evaluators' results import: the factory
imports the evaluators, so keeping it there made the two import each other.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from detclip_bench.metrics.coco_ap import CocoEvaluator
from detclip_bench.metrics.lvis_ap import LvisEvaluator
from detclip_bench.metrics.protocols import (
    DEFAULT_LVIS_MAX_DETS,
    DEFAULT_TOPK_PER_CATEGORY,
    PAPER_ONLY,
    PROTOCOLS,
    canonical_protocol,
)

if TYPE_CHECKING:
    from detclip_bench.metrics.gt import GroundTruth
    from detclip_bench.metrics.streaming import StreamingEvaluator

__all__ = ["make_evaluator"]


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
