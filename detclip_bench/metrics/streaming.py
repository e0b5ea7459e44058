"""The streaming evaluator shared by every protocol: validate, cap while streaming, merge ranks.

Predictions arrive as arrays per image (or per batch); nothing is turned into JSON dicts. What a
protocol changes is only *which* detections survive (the :class:`GroupTopK` it uses) and how the
engine's precision/recall are summarised.
"""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np

from detclip_bench.errors import DataError
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.metrics.results import CategoryRow, EvalResult
from detclip_bench.metrics.topk import GroupTopK

__all__ = ["StreamingEvaluator"]

log = logging.getLogger("detclip_bench.metrics")


def _membership(ids: np.ndarray):
    """``ids`` membership test for many small updates: a dense lookup table when ids are small, else ``np.isin``."""
    if len(ids) and ids.min() >= 0 and ids.max() < 50_000_000:
        table = np.zeros(int(ids.max()) + 1, bool)
        table[ids] = True

        def known(values: np.ndarray) -> np.ndarray:
            if not np.issubdtype(np.asarray(values).dtype, np.integer):
                return np.isin(values, ids)  # 1.5 must not pass as image 1
            v = np.asarray(values, dtype=np.int64)
            inside = (v >= 0) & (v < len(table))
            return inside & table[np.where(inside, v, 0)]

        return known
    return lambda values: np.isin(values, ids)


class StreamingEvaluator:
    """Base class: subclasses set ``self.gt`` and ``self.pool`` and implement :meth:`compute`."""

    source = "predictions"  # named in DataError; score_files sets the results file path

    def __init__(self, gt: dict | str | os.PathLike, *, lvis: bool, pool: GroupTopK) -> None:
        self.gt = GroundTruth.load(gt, lvis=lvis)
        self.pool = pool
        self._image_known = _membership(self.gt.image_ids)
        self._cat_known = _membership(self.gt.category_ids)

    # -- input -------------------------------------------------------------------------------
    def update(self, image_id, boxes_xyxy, scores, category_ids) -> None:
        """Add one image's detections (or a batch, with ``image_id`` an array of per-row ids).

        Boxes are xyxy in original pixels; category ids are the GT json's ids.
        """
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        n = len(scores)
        boxes = np.asarray(boxes_xyxy, dtype=np.float64)
        if boxes.size != 4 * n:
            raise DataError(self.source, f"image {image_id}", f"boxes must be (N, 4) xyxy for {n} scores, "
                            f"got shape {boxes.shape}")
        boxes = boxes.reshape(n, 4)
        cats = np.asarray(category_ids).reshape(-1)
        image_ids = np.asarray(image_id).reshape(-1)
        if image_ids.size == 1 and n != 1:
            image_ids = np.full(n, image_ids[0] if image_ids.size else 0)
        if len(cats) != n or len(image_ids) != n:
            raise DataError(self.source, f"image {image_id}", f"length mismatch: {n} scores, {len(cats)} category ids, "
                            f"{len(image_ids)} image ids")
        if n == 0:
            return
        self._validate(image_ids, boxes, scores, cats)
        self.pool.add(image_ids.astype(np.int64), boxes, scores, cats.astype(np.int64))

    def _validate(self, image_ids: np.ndarray, boxes: np.ndarray, scores: np.ndarray, cats: np.ndarray) -> None:
        def fail(mask: np.ndarray, message: str) -> None:
            j = int(np.flatnonzero(mask)[0])
            raise DataError(self.source, f"detection {self.pool.num_seen + j} (image_id {image_ids[j]})",
                            f"{message}; first offender: box {boxes[j].tolist()}, score {scores[j]}, "
                            f"category_id {cats[j]} ({int(mask.sum())} such detections in this update)")

        bad = ~np.isfinite(scores)
        if bad.any():
            fail(bad, "score is NaN or infinite")
        bad = ~np.isfinite(boxes).all(1)
        if bad.any():
            fail(bad, "box has a NaN or infinite coordinate")
        bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if bad.any():
            fail(bad, "box has a negative width or height (boxes must be xyxy, x2 >= x1, y2 >= y1)")
        bad = ~self._image_known(image_ids)
        if bad.any():
            fail(bad, "image_id is not in the GT (lvis-api/pycocotools would refuse this results file)")
        bad = ~self._cat_known(cats)
        if bad.any():
            fail(bad, "category_id is not a GT category (pycocotools would silently drop it)")

    # -- ranks -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to merge this rank's stream into another's (numpy arrays, picklable)."""
        return self.pool.state_dict()

    def merge(self, states: list[dict]) -> None:
        """Replace this evaluator's stream by ``states`` concatenated in order (rank 0 first)."""
        self.pool = GroupTopK.merged(states)

    def synchronize(self) -> None:
        """All-gather every rank's state (torch.distributed) and merge in rank order; no-op in one process."""
        from detclip_bench import dist

        if dist.get_world_size() > 1:
            self.merge(dist.all_gather_object(self.state_dict()))

    # -- output ------------------------------------------------------------------------------
    def _result(self, protocol: str, metrics: dict[str, float], ap: dict[int, float], rows: dict[str, np.ndarray],
                *, topk: int | None, max_dets_per_image: int | None, extra_warnings: list[str]) -> EvalResult:
        gt = self.gt
        cat_ids, counts = np.unique(rows["category_ids"], return_counts=True)
        dets = dict(zip(cat_ids.tolist(), counts.tolist(), strict=True))
        table = [CategoryRow(int(c), gt.category_names[int(c)], gt.frequency.get(int(c)), ap.get(int(c), float("nan")),
                             gt.num_gt[int(c)], int(dets.get(int(c), 0))) for c in gt.category_ids]
        warns = list(extra_warnings)
        if self.pool.num_seen == 0:
            warns.append("no detections at all: every AP with GT is 0 (pycocotools/lvis-api crash on an empty results list)")
        for w in warns:
            warnings.warn(w, stacklevel=3)
        return EvalResult(protocol, metrics, topk, max_dets_per_image, len(gt.image_ids), len(gt.category_ids),
                          len(gt.dataset["annotations"]), self.pool.num_seen, len(rows["scores"]), table, warns)
