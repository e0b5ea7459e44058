"""LVIS AP: standard (lvis-api, top 300 per image) and Fixed AP (Dave et al. 2021, top K per category).

Both use lvis-api's federated rules and r/c/f groups; they differ only in which detections enter:

* ``standard``: ``LVISResults.limit_dets_per_image`` — the 300 best per image across categories
  (stable: the earlier detection wins a tie at the cut).
* ``fixed``: the large-vocab-devil recipe — the K best per category over the whole split, stable,
  cut *before* federated filtering (detections on unverified images still use up budget), then
  ``LVISResults(max_dets=-1)``: no per-image cap. Kept as a bounded per-category top-K while
  predictions stream in, so the ~12M-detection pool never exists in memory.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np

from detclip_bench.metrics.engine import lvis_summary, per_category_ap
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.metrics.results import EvalResult
from detclip_bench.metrics.streaming import StreamingEvaluator
from detclip_bench.metrics.topk import CATEGORY, IMAGE, DetectionRows, GroupTopK

__all__ = ["LvisEvaluator"]


class LvisEvaluator(StreamingEvaluator):
    """LVIS box AP under lvis-api's federated rules, as Fixed AP or as standard AP.

    Detections stream in through :meth:`~StreamingEvaluator.update`, one image or a batch at a
    time: boxes ``(N, 4)`` xyxy in original image pixels, scores ``(N,)``, category ids ``(N,)``
    as in the GT json. Only the detections the protocol keeps are held (a per-category top-K
    for ``fixed``, a per-image top-``max_dets_per_image`` for ``standard``; a tie at the cut
    keeps the detection that arrived first). Detections on categories an image was never checked
    for (neither positive nor in its ``neg_category_ids``) are ignored, as lvis-api does.

    :meth:`compute` returns an :class:`~detclip_bench.metrics.results.EvalResult` with protocol
    ``"lvis-fixed"`` or ``"lvis-standard"`` and lvis-api's summary keys as fractions in [0, 1]
    (-1 where undefined): ``AP``, ``AP50``, ``AP75``, ``APs``/``APm``/``APl``,
    ``APr``/``APc``/``APf`` and ``AR@<n>``/``ARs@<n>``/``ARm@<n>``/``ARl@<n>`` (``n`` = -1 for
    Fixed AP, ``max_dets_per_image`` for standard), plus one per-category row (AP, GT count,
    detections kept). Under Fixed AP, categories with fewer than K detections add a warning.

    Args:
        gt: the LVIS GT: a json path, an already-parsed dict, or a loaded
            :class:`~detclip_bench.metrics.gt.GroundTruth` (which must have been loaded as LVIS).
            Every category needs a ``frequency`` (r/c/f).
        protocol: ``"fixed"`` (Dave et al. 2021: the best ``topk_per_category`` detections per
            category over the whole split, cut before federated filtering; no per-image cap) or
            ``"standard"`` (lvis-api: the best ``max_dets_per_image`` per image).
        topk_per_category: K of Fixed AP (default 10,000); must be >= 1. Unused by ``standard``.
        max_dets_per_image: the per-image cap of ``standard`` (default 300; negative = no cap).
            Unused by ``fixed``.
        pool_per_category: ``fixed`` only: detections held per category while streaming (default
            ``topk_per_category``; must be >= it). Scores never change (the K best are still the ones
            scored), but an image-level bootstrap (:mod:`~detclip_bench.metrics.bootstrap`) that drops
            images moves the K-th detection down the list, so it needs the ones behind it: ``2 * K`` is
            what ``detclip-bench score --bootstrap`` holds.

    Example::

        >>> ev = LvisEvaluator("lvis/lvis_v1_minival.json", protocol="fixed")
        >>> ev.update(139, boxes, scores, category_ids)  # one image: (N, 4) xyxy pixels, (N,), (N,) GT ids
        >>> ev.update(image_ids, boxes, scores, category_ids)  # or a batch: image_ids (N,) per row
        >>> ev.synchronize()  # under torch.distributed: gather every rank's detections
        >>> result = ev.compute()
        >>> result.metrics["AP"], result.metrics["APr"]
    """

    def __init__(
        self,
        gt: dict | str | os.PathLike | GroundTruth,
        *,
        protocol: Literal["fixed", "standard"] = "fixed",
        topk_per_category: int = 10000,
        max_dets_per_image: int = 300,
        pool_per_category: int | None = None,
    ) -> None:
        if protocol == "fixed":
            if topk_per_category < 1:
                raise ValueError(f"topk_per_category must be >= 1, got {topk_per_category}")
            depth = topk_per_category if pool_per_category is None else pool_per_category
            if depth < topk_per_category:
                raise ValueError(
                    f"pool_per_category ({pool_per_category}) must be >= topk_per_category ({topk_per_category})"
                )
            pool = GroupTopK(depth, "category")
        elif pool_per_category is not None:
            raise ValueError("pool_per_category applies to protocol='fixed' only")
        elif protocol == "standard":
            # lvis-api: max_dets < 0 means no cap.
            pool = GroupTopK(max_dets_per_image if max_dets_per_image >= 0 else None, "image")
        else:
            raise ValueError(f"unknown LVIS protocol {protocol!r}; expected 'fixed' or 'standard'")
        super().__init__(gt, lvis=True, pool=pool)
        self.protocol = protocol
        self.topk_per_category = topk_per_category
        self.max_dets_per_image = max_dets_per_image

    def kept_rows(self) -> DetectionRows:
        rows = self.pool.result()
        if self.protocol != "fixed" or self.pool.k == self.topk_per_category:
            return rows
        # A deeper pool (for the bootstrap): score the K best per category exactly as a K-deep pool keeps them.
        keep = GroupTopK(self.topk_per_category, "category")._select(rows.engine, rows.seq)
        return DetectionRows(rows.engine[keep], rows.seq[keep])

    def engine_rows(self, rows: DetectionRows) -> np.ndarray:
        # Federated filtering before the engine (lvis-api does it in LVISEval._prepare): on LVIS-val-like
        # pools most detections sit on categories the image was never checked for, so most never get built.
        e = rows.engine
        return e[self.gt.federated_mask(e[:, IMAGE], e[:, CATEGORY])]

    def compute(self) -> EvalResult:
        rows, acc = self.accumulated()
        fixed = self.protocol == "fixed"
        # lvis-api labels AR with params.max_dets: 300 for standard, -1 in the Fixed-AP recipe.
        metrics = lvis_summary(acc, self.gt, ar_label=-1 if fixed else self.max_dets_per_image)
        notes = []
        present = self.detections_per_category(rows)
        if fixed:
            short = int((present < self.topk_per_category).sum())
            if short:
                notes.append(
                    f"{short} of {len(present)} categories have fewer than K={self.topk_per_category} "
                    "detections; Fixed AP will be artificially low (emit more low-score detections)"
                )
        return self._result(
            f"lvis-{self.protocol}",
            metrics,
            per_category_ap(acc),
            rows,
            topk=self.topk_per_category if fixed else None,
            max_dets_per_image=None if fixed else self.max_dets_per_image,
            extra_warnings=notes,
            per_category=present,
        )
