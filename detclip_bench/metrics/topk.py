"""Streaming, mergeable "keep the best K per group" over detection rows.

One mechanism serves every protocol: LVIS Fixed AP keeps the top K per *category* over the whole
split (Dave et al. 2021); standard LVIS AP and GLIP-style COCO keep the top N per *image*. Ties are
broken by arrival order (an increasing sequence number), which is exactly Python's stable
``sorted(..., reverse=True)[:K]`` over a results list in that order — the large-vocab-devil recipe
and ``LVISResults.limit_dets_per_image``. Memory stays bounded: held rows never exceed K per group,
plus a buffer that is compacted once it outgrows the held rows.

Rows are written once, on arrival, straight into the engine's layout (hotcoco's ``load_res`` array:
``image_id, x, y, w, h, score, category_id``), so evaluation hands the buffer over without a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from detclip_bench.metrics.kbest import first_k_per_group
from detclip_bench.metrics.pages import fresh

__all__ = ["COLUMNS", "DetectionRows", "GroupTopK"]

COLUMNS = ("image_ids", "boxes", "scores", "category_ids", "seq")
IMAGE, SCORE, CATEGORY = 0, 5, 6  # columns of the engine layout
_MIN_BUFFER = 1 << 20
_MIN_CAPACITY = 1 << 12
_MAX_RESERVE = 1 << 25  # rows reserved up front at most (1.9 GB of address space, resident only once written)


@dataclass(frozen=True)
class DetectionRows:
    """Kept detections: ``engine`` is (N, 7) float64 ``image_id, x, y, w, h, score, category_id``; ``seq`` the
    arrival order. Indexing by a :data:`COLUMNS` name gives that column (ids as int64, boxes as xyxy)."""

    engine: np.ndarray
    seq: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)

    def __getitem__(self, column: str) -> np.ndarray:
        e = self.engine
        if column == "image_ids":
            return e[:, IMAGE].astype(np.int64)
        if column == "category_ids":
            return e[:, CATEGORY].astype(np.int64)
        if column == "scores":
            return e[:, SCORE]
        if column == "boxes":
            return np.concatenate([e[:, 1:3], e[:, 1:3] + e[:, 3:5]], axis=1)
        if column == "seq":
            return self.seq
        raise KeyError(column)


@dataclass
class GroupTopK:
    """Keeps, per group (``"category"`` or ``"image"``), the ``k`` highest-scoring rows; ``k=None`` keeps all."""

    k: int | None
    group: Literal["category", "image"]
    num_seen: int = 0
    _engine: np.ndarray = field(default_factory=lambda: np.empty((0, 7), np.float64), repr=False)
    _seq: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    _filled: int = 0  # rows [0, _filled) are in use
    _staged: int = 0  # rows written after them by stage(), not yet committed
    _staged_take: np.ndarray | None = field(default=None, repr=False)  # their positions in the staged batch
    _staged_batch: int = 0  # that batch's length
    _held: int = 0  # of which rows [0, _held) survived the last selection
    # Fast path: while every group arrived in one chunk of at most k rows, nothing can be dropped,
    # so no selection (and no compaction) is needed (the per-image cap of LVIS/COCO, fed image by image).
    _groups_seen: set = field(default_factory=set, repr=False)
    _needs_select: bool = False

    def add(self, image_ids, boxes_xyxy: np.ndarray, scores: np.ndarray, category_ids: np.ndarray) -> None:
        """Keep these rows (``image_ids``: one id per row, or one id for all of them)."""
        n = len(scores)
        self.stage(image_ids, boxes_xyxy, scores, category_ids)
        key = np.asarray(category_ids if self.group == "category" else image_ids).reshape(-1)
        uniform = len(key) == 1 or (n > 0 and bool((key == key[0]).all()))
        self.commit(n, np.asarray([key[0]]) if uniform and n else None, np.asarray([n]))

    def batch_keep(self, image_ids: np.ndarray, scores: np.ndarray, category_ids: np.ndarray) -> np.ndarray | None:
        """Positions (increasing) of the rows of one batch that may still survive, or None when all may: a row
        that k rows of its own batch beat (a higher score, or an equal one that came first) stays beaten
        whatever else arrives, so it need never be written (a results file with 600 detections per image
        under a 300 cap). Scores must be finite."""
        if self.k is None or len(scores) <= self.k:
            return None
        keep = first_k_per_group(category_ids if self.group == "category" else image_ids, scores, self.k)
        return keep if len(keep) < len(scores) else None

    def stage(
        self,
        image_ids,
        boxes_xyxy: np.ndarray,
        scores: np.ndarray,
        category_ids: np.ndarray,
        take: np.ndarray | None = None,
    ) -> np.ndarray:
        """Write rows after the kept ones, in the engine layout, without keeping them yet: the caller can check
        the written rows (one pass over finished values) and then :meth:`commit` or drop them. ``take`` (from
        :meth:`batch_keep`): write only those rows; committed, they keep their arrival numbers in the batch."""
        self._staged_take, self._staged_batch = take, len(scores)
        if take is not None:
            image_ids, boxes_xyxy, scores, category_ids = (
                np.asarray(col)[take] for col in (image_ids, boxes_xyxy, scores, category_ids)
            )
        n = len(scores)
        start = self._filled
        if start + n > len(self._seq):
            self.reserve(max(start + n, 2 * len(self._seq), _MIN_CAPACITY))
        rows = self._engine[start : start + n]
        rows[:, IMAGE] = image_ids
        rows[:, 1:3] = boxes_xyxy[:, :2]
        np.subtract(boxes_xyxy[:, 2:], boxes_xyxy[:, :2], out=rows[:, 3:5])
        rows[:, SCORE] = scores
        rows[:, CATEGORY] = category_ids
        self._staged = n
        return rows

    def commit(self, n: int, chunk_groups: np.ndarray | None = None, chunk_sizes: np.ndarray | None = None) -> None:
        """Keep the first ``n`` rows the last :meth:`stage` wrote. When they are consecutive chunks each of a single
        group, ``chunk_groups``/``chunk_sizes`` say so (the fast path); None means rows of any groups."""
        take = self._staged_take
        if not 0 <= n <= self._staged or (take is not None and n != self._staged):
            raise ValueError(
                f"commit({n}) after staging {self._staged} rows{'' if take is None else ' of a cut batch'}"
            )
        start = self._filled
        self._staged, self._staged_take = 0, None
        if n == 0:
            return
        self._note_groups(chunk_groups, chunk_sizes)
        self._seq[start : start + n] = self.num_seen + (np.arange(n) if take is None else take)
        self.num_seen += n if take is None else self._staged_batch
        self._filled += n
        if self._needs_select and self._filled - self._held >= max(_MIN_BUFFER, self._held):
            self._compact()

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows up front. Untouched capacity is only address space (pages without
        huge-page advice, see :func:`~detclip_bench.metrics.pages.fresh`), while growing later copies the buffer
        into freshly faulted pages, which costs more than the copy itself."""
        if rows <= len(self._seq):
            return
        engine, seq = fresh(rows, np.float64, 7), fresh(rows, np.int64)
        engine[: self._filled] = self._engine[: self._filled]
        seq[: self._filled] = self._seq[: self._filled]
        self._engine, self._seq = engine, seq

    def reserve_for(self, num_groups: int) -> None:
        """Reserve what ``num_groups`` groups need in the usual case: each image once (per-image caps), or
        held rows plus one compaction buffer (per-category caps); more only grows the buffer."""
        if self.k is not None:
            held = num_groups * self.k
            self.reserve(min(held if self.group == "image" else 2 * held + _MIN_BUFFER, _MAX_RESERVE))

    def _note_groups(self, chunk_groups: np.ndarray | None, chunk_sizes: np.ndarray | None) -> None:
        if self.k is None or self._needs_select:
            return
        groups = [] if chunk_groups is None else chunk_groups.tolist()
        if (
            chunk_groups is None
            or (chunk_sizes > self.k).any()
            or len(set(groups)) < len(groups)
            or not self._groups_seen.isdisjoint(groups)
        ):
            self._needs_select = True  # a group may exceed k: select exactly at compaction
        else:
            self._groups_seen.update(groups)

    def _compact(self) -> None:
        if self._needs_select and self._filled > self._held:
            keep = self._select(self._engine[: self._filled], self._seq[: self._filled])
            if len(keep) < self._filled:  # else nothing was dropped: no need to move anything
                self._engine[: len(keep)] = self._engine[keep]
                self._seq[: len(keep)] = self._seq[keep]
                self._filled = len(keep)
        self._held = self._filled

    def _select(self, engine: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """Indices (in arrival order, so k=None and k=∞ hand the engine the same sequence) of the rows that
        survive: the first k of each group by (-score, arrival). Rows are held in arrival order (``seq``
        increases), so their position breaks ties as ``seq`` would."""
        if self.k is None:
            return np.arange(len(seq))
        key = engine[:, CATEGORY if self.group == "category" else IMAGE]
        return first_k_per_group(key, engine[:, SCORE], self.k)

    def result(self) -> DetectionRows:
        """The kept rows, in arrival order (views into the buffer: valid until the next :meth:`add`)."""
        self._compact()
        return DetectionRows(self._engine[: self._filled], self._seq[: self._filled])

    def state_dict(self) -> dict:
        kept = self.result()
        return {
            "k": self.k,
            "group": self.group,
            "num_seen": self.num_seen,
            "engine": kept.engine.copy(),
            "seq": kept.seq.copy(),
        }

    @classmethod
    def merged(cls, states: list[dict]) -> GroupTopK:
        """Concatenate states in the given (rank) order, as if one process had seen their streams back to back."""
        if not states:
            raise ValueError("merged() needs at least one state")
        k, group = states[0]["k"], states[0]["group"]
        if any(s["k"] != k or s["group"] != group for s in states):
            raise ValueError("cannot merge top-K states with different k or group")
        offsets = np.cumsum([0] + [int(s["num_seen"]) for s in states])
        out = cls(k, group, num_seen=int(offsets[-1]), _needs_select=True)
        out._engine = np.concatenate([s["engine"] for s in states])
        out._seq = np.concatenate([s["seq"] + off for s, off in zip(states, offsets[:-1], strict=False)])
        out._filled = len(out._seq)
        out._compact()
        return out
