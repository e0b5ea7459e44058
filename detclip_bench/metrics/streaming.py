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

from detclip_bench import dist
from detclip_bench.errors import DataError
from detclip_bench.metrics.dense import dense_table_fits
from detclip_bench.metrics.engine import Accumulated, accumulate
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.metrics.results import CategoryRow, EvalResult
from detclip_bench.metrics.topk import CATEGORY, DetectionRows, GroupTopK

__all__ = ["StreamingEvaluator"]

log = logging.getLogger("detclip_bench.metrics")
_BLOCK = 4096  # detections per vectorised value check (small updates wait for their block)
_CUT_EARLY_FROM = 1 << 16  # a checked block this large drops what the cap discards before it is written
_EXACT_FLOAT_INT = 2**53


class _IdSet:
    """Membership in the GT's ids, checked per block of detections: a dense lookup table when ids are small."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        small = len(ids) and dense_table_fits(int(ids.min()), int(ids.max()), len(ids))
        self.table = np.zeros(int(ids.max()) + 1, bool) if small else None
        if self.table is not None:
            self.table[ids] = True
            # With a False on each side, values clipped into range (below 0, beyond the largest id) read False.
            self._padded = np.r_[False, self.table, False]

    def all_known(self, values: np.ndarray) -> bool:
        """True when every value is a known id; False may also mean "look closer" (non-integer dtype)."""
        if values.dtype.kind not in "iu":
            return False
        if self.table is None:
            return bool(np.isin(values, self.ids).all())
        return bool(self._padded.take(values + 1, mode="clip").all())

    def count(self, values: np.ndarray) -> np.ndarray:
        """How often each id (in sorted order) occurs in ``values``, which must all be known ids."""
        v = values.astype(np.int64)
        if self.table is None:
            return np.bincount(np.searchsorted(self.ids, v), minlength=len(self.ids))
        return np.bincount(v, minlength=len(self.table))[self.ids]

    def known(self, values: np.ndarray) -> np.ndarray:
        """Per value: is it a known id (1.5 must not pass as image 1)."""
        if not np.issubdtype(values.dtype, np.integer) or self.table is None:
            return np.isin(values, self.ids)
        v = values.astype(np.int64)
        inside = (v >= 0) & (v < len(self.table))
        return inside & self.table[np.where(inside, v, 0)]


class StreamingEvaluator:
    """Base class of every protocol's evaluator: validate detections as they stream in, keep only those
    the protocol can use, merge ranks, hand the kept rows to the engine.

    Life cycle: :meth:`update` (any number of times, any image order) → :meth:`synchronize` under
    ``torch.distributed`` (or :meth:`state_dict` / :meth:`merge` by hand) → ``compute()``.

    Input of :meth:`update`: ``image_id`` (an int, or an ``(N,)`` array of per-row ids),
    ``boxes_xyxy`` ``(N, 4)`` in original image pixels (x2 >= x1, y2 >= y1), ``scores`` ``(N,)``,
    ``category_ids`` ``(N,)`` as in the GT json. Shapes are checked at once; values (finite, known
    image and category ids) in blocks of about 4,096 detections, so a bad one raises a
    :class:`~detclip_bench.errors.DataError` from the call that completes its block (or from
    :meth:`flush`); that update is dropped, all others are kept.

    Output: subclasses implement ``compute() -> EvalResult`` (see
    :class:`~detclip_bench.metrics.coco_ap.CocoEvaluator`,
    :class:`~detclip_bench.metrics.lvis_ap.LvisEvaluator`) from :meth:`accumulated`, and may override
    :meth:`engine_rows` (rows the engine would ignore anyway) and ``engine_max_dets`` (the engine's
    own per-(image, category) caps).

    Args:
        gt: a GT json path, an already-parsed dict, or a loaded
            :class:`~detclip_bench.metrics.gt.GroundTruth` (its ``lvis`` flag must match ``lvis``).
            Image and category ids must stay below 2**53 (the engine's detection array is float64).
        lvis: load ``gt`` as LVIS (federated labels, r/c/f frequencies) rather than COCO.
        pool: the :class:`~detclip_bench.metrics.topk.GroupTopK` that decides which detections are
            kept while streaming (per image or per category, with its budget).
    """

    source = "predictions"  # named in DataError; score_files sets the results file path
    engine_max_dets: list[int] | None = None  # the engine's own per-(image, category) caps; None: none

    def engine_rows(self, rows: DetectionRows) -> np.ndarray:
        """The rows the engine must see (all of them, unless a protocol drops some it would ignore anyway)."""
        return rows.engine

    def kept_rows(self) -> DetectionRows:
        """The rows the protocol scores: the pool's, unless it holds more than the protocol keeps (a deeper
        Fixed-AP pool held for the bootstrap, see :class:`~detclip_bench.metrics.lvis_ap.LvisEvaluator`)."""
        return self.pool.result()

    def accumulated(self) -> tuple[DetectionRows, Accumulated]:
        """The kept rows and the engine's precision/recall over them."""
        rows = self.kept_rows()
        return rows, accumulate(self.gt, self.engine_rows(rows), max_dets=self.engine_max_dets)

    def __init__(self, gt: dict | str | os.PathLike | GroundTruth, *, lvis: bool, pool: GroupTopK) -> None:
        if isinstance(gt, GroundTruth) and gt.lvis != lvis:
            raise ValueError(f"{gt.source} was loaded as {'LVIS' if gt.lvis else 'COCO'} ground truth")
        self.gt = gt if isinstance(gt, GroundTruth) else GroundTruth.load(gt, lvis=lvis)
        for name, ids in (("image", self.gt.image_ids), ("category", self.gt.category_ids)):
            if len(ids) and np.abs(ids).max() >= _EXACT_FLOAT_INT:
                raise DataError(
                    self.gt.source,
                    f"{name} ids",
                    "ids at or beyond 2**53 cannot be passed to the engine exactly (its detection array is float64)",
                )
        pool.reserve_for(len(self.gt.image_ids) if pool.group == "image" else len(self.gt.category_ids))
        self._pool = pool
        self._pending: list[tuple] = []  # updates not yet checked: (image id(s), one_image, boxes, scores, cats)
        self._pending_rows = 0
        self._image_ids = _IdSet(self.gt.image_ids)
        self._category_ids = _IdSet(self.gt.category_ids)

    @property
    def pool(self) -> GroupTopK:
        """The kept detections (pending updates are checked and kept first)."""
        self.flush()
        return self._pool

    # -- input -------------------------------------------------------------------------------
    def update(self, image_id, boxes_xyxy, scores, category_ids) -> None:
        """Add one image's detections (or a batch, with ``image_id`` an array of per-row ids).

        Boxes are xyxy in original pixels; category ids are the GT json's ids. Shapes are checked at
        once; values (finite, x2 >= x1, known ids) are checked in blocks of ~4,096 detections, since one
        vectorised check per block costs less than the update calls themselves. A bad value raises a
        DataError naming the detection and its image from the update call that completes its block
        (or :meth:`flush` / :meth:`compute`); the offending update is dropped, all others are kept.
        """
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        n = len(scores)
        boxes = np.asarray(boxes_xyxy, dtype=np.float64)
        if boxes.size != 4 * n:
            raise DataError(
                self.source, f"image {image_id}", f"boxes must be (N, 4) xyxy for {n} scores, got shape {boxes.shape}"
            )
        boxes = boxes.reshape(n, 4)
        cats = np.asarray(category_ids).reshape(-1)
        one_image = isinstance(image_id, int | np.integer) and not isinstance(image_id, bool)
        image_ids = image_id if one_image else np.asarray(image_id).reshape(-1)
        if not one_image and image_ids.size == 1:
            image_ids, one_image = image_ids[0], True
        if np.asarray(image_ids).dtype == bool or cats.dtype == bool:
            raise DataError(self.source, f"image {image_id}", "image and category ids must be integers, not booleans")
        if len(cats) != n or (not one_image and len(image_ids) != n):
            raise DataError(
                self.source,
                f"image {image_id}",
                f"length mismatch: {n} scores, {len(cats)} category ids, "
                f"{1 if one_image else len(image_ids)} image ids",
            )
        if n == 0:
            return
        self._pending.append((image_ids, one_image, boxes, scores, cats))
        self._pending_rows += n
        if self._pending_rows >= _BLOCK:
            self.flush()

    def flush(self) -> None:
        """Check and keep every pending update now (compute, state_dict and merge do this themselves)."""
        while self._pending:
            self._check_and_keep()

    def _check_and_keep(self) -> None:
        entries, pool = self._pending, self._pool
        sizes = np.fromiter((len(e[3]) for e in entries), np.int64, len(entries))
        if all(e[1] for e in entries):
            image_ids = np.repeat(np.array([e[0] for e in entries]), sizes)
            chunk_groups = np.array([e[0] for e in entries])
        else:
            image_ids = np.concatenate([np.full(len(e[3]), e[0]) if e[1] else e[0] for e in entries])
            firsts = [e[0] if e[1] else e[0][0] for e in entries]
            uniform = all(e[1] or (e[0] == e[0][0]).all() for e in entries)
            chunk_groups = np.array(firsts) if uniform else None
        if pool.group != "image":
            chunk_groups = None  # the fast path knows image chunks only
        boxes, scores, cats = (
            np.concatenate([e[k] for e in entries]) if len(entries) > 1 else entries[0][k] for k in (2, 3, 4)
        )
        # A large block (a whole results file) found clean on its columns loses what the cap discards before it
        # is written: a file with twice the cap per image enters the engine layout half-sized. Any other block
        # is written whole and checked there; a suspicious one is looked at value by value.
        clean = (
            len(scores) >= _CUT_EARLY_FROM
            and pool.k is not None
            and self._columns_clean(image_ids, boxes, scores, cats)
        )
        take = pool.batch_keep(image_ids, scores, cats) if clean else None
        rows = pool.stage(image_ids, boxes, scores, cats, take)
        # One pass over the written rows: every value finite (a sum is NaN/inf otherwise) and w, h >= 0 (the
        # min is NaN, so the test fails, if any is NaN).
        problem = None
        if not clean and not (
            np.isfinite(rows.sum())
            and rows[:, 3:5].min() >= 0
            and self._image_ids.all_known(image_ids)
            and self._category_ids.all_known(cats)
        ):
            problem = self._first_problem(image_ids, boxes, scores, cats)
        if problem is None:
            pool.commit(len(rows), chunk_groups if take is None else None, sizes)
            self._pending, self._pending_rows = [], 0
            return
        j, mask, message = problem
        ends = np.cumsum(sizes)
        bad = int(np.searchsorted(ends, j, side="right"))  # the update holding detection j
        begin = int(ends[bad - 1]) if bad else 0
        first_index = pool.num_seen + j
        pool.commit(begin, None if chunk_groups is None else chunk_groups[:bad], sizes[:bad])
        self._pending = entries[bad + 1 :]
        self._pending_rows = int(sum(len(e[3]) for e in self._pending))
        raise DataError(
            self.source,
            f"detection {first_index} (image_id {image_ids[j]})",
            f"{message}; first offender: box {boxes[j].tolist()}, score {scores[j]}, category_id "
            f"{cats[j]} ({int(mask[begin : ends[bad]].sum())} such detections in this update)",
        )

    def _columns_clean(self, image_ids: np.ndarray, boxes: np.ndarray, scores: np.ndarray, cats: np.ndarray) -> bool:
        """The written rows' check, made on the columns before anything is written: every value finite, x2 >= x1,
        y2 >= y1 and every id known. False may also mean "look closer" (a sum that overflows)."""
        return bool(
            np.isfinite(scores.sum())
            and np.isfinite(boxes.sum())
            and (boxes[:, 2:] >= boxes[:, :2]).all()
            and self._image_ids.all_known(image_ids)
            and self._category_ids.all_known(cats)
        )

    def _first_problem(
        self, image_ids: np.ndarray, boxes: np.ndarray, scores: np.ndarray, cats: np.ndarray
    ) -> tuple[int, np.ndarray, str] | None:
        """(earliest bad row, mask of rows with the same fault, what is wrong), or None when all is well.
        The earliest row, whatever its fault: every update before it is then known to be clean."""
        checks = (
            (~np.isfinite(scores), "score is NaN or infinite"),
            (~np.isfinite(boxes).all(1), "box has a NaN or infinite coordinate"),
            (
                (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]),
                "box has a negative width or height (boxes must be xyxy, x2 >= x1, y2 >= y1)",
            ),
            (
                ~self._image_ids.known(image_ids),
                "image_id is not in the GT (lvis-api/pycocotools would refuse this results file)",
            ),
            (~self._category_ids.known(cats), "category_id is not a GT category (pycocotools would silently drop it)"),
        )
        bad = np.logical_or.reduce([mask for mask, _ in checks])
        if not bad.any():
            return None
        j = int(np.flatnonzero(bad)[0])
        mask, message = next((mask, message) for mask, message in checks if mask[j])
        return j, mask, message

    # -- ranks -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to merge this rank's stream into another's (numpy arrays, picklable)."""
        return self.pool.state_dict()

    def merge(self, states: list[dict]) -> None:
        """Replace this evaluator's stream by ``states`` concatenated in order (rank 0 first)."""
        self._pending, self._pending_rows = [], 0
        self._pool = GroupTopK.merged(states)

    def synchronize(self) -> None:
        """All-gather every rank's state (torch.distributed) and merge in rank order; no-op in one process."""
        if dist.get_world_size() > 1:
            self.merge(dist.all_gather_object(self.state_dict()))

    # -- output ------------------------------------------------------------------------------
    def detections_per_category(self, rows: DetectionRows) -> np.ndarray:
        """Kept detections per GT category, aligned with ``gt.category_ids``."""
        return self._category_ids.count(rows.engine[:, CATEGORY])

    def _result(
        self,
        protocol: str,
        metrics: dict[str, float],
        ap: dict[int, float],
        rows: DetectionRows,
        *,
        topk: int | None,
        max_dets_per_image: int | None,
        extra_warnings: list[str],
        per_category: np.ndarray | None = None,
    ) -> EvalResult:
        gt = self.gt
        if per_category is None:
            per_category = self.detections_per_category(rows)
        table = [
            CategoryRow(c, gt.category_names[c], gt.frequency.get(c), ap.get(c, float("nan")), gt.num_gt[c], n)
            for c, n in zip(gt.category_ids.tolist(), per_category.tolist(), strict=True)
        ]
        warns = list(extra_warnings)
        if self.pool.num_seen == 0:
            warns.append(
                "no detections at all: every AP with GT is 0 (pycocotools/lvis-api crash on an empty results list)"
            )
        for w in warns:
            warnings.warn(w, stacklevel=3)
        return EvalResult(
            protocol,
            metrics,
            topk,
            max_dets_per_image,
            len(gt.image_ids),
            len(gt.category_ids),
            gt.num_annotations,
            self.pool.num_seen,
            len(rows),
            table,
            warns,
        )
