"""Streaming, mergeable "keep the best K per group" over detection columns.

One mechanism serves every protocol: LVIS Fixed AP keeps the top K per *category* over the whole
split (Dave et al. 2021); standard LVIS AP and GLIP-style COCO keep the top N per *image*. Ties are
broken by arrival order (an increasing sequence number), which is exactly Python's stable
``sorted(..., reverse=True)[:K]`` over a results list in that order — the large-vocab-devil recipe
and ``LVISResults.limit_dets_per_image``. Memory stays bounded: held rows never exceed K per group,
plus one buffer that is compacted once it outgrows the held rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["COLUMNS", "GroupTopK"]

# image_ids int64, boxes float64 (N,4) xyxy, scores float64, category_ids int64, seq int64 (arrival order)
COLUMNS = ("image_ids", "boxes", "scores", "category_ids", "seq")
_MIN_BUFFER = 1 << 20


def _empty() -> dict[str, np.ndarray]:
    return {
        "image_ids": np.zeros(0, np.int64),
        "boxes": np.zeros((0, 4), np.float64),
        "scores": np.zeros(0, np.float64),
        "category_ids": np.zeros(0, np.int64),
        "seq": np.zeros(0, np.int64),
    }


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {c: np.concatenate([p[c] for p in parts]) for c in COLUMNS}


@dataclass
class GroupTopK:
    """Keeps, per group (``"category"`` or ``"image"``), the ``k`` highest-scoring rows; ``k=None`` keeps all."""

    k: int | None
    group: Literal["category", "image"]
    held: dict[str, np.ndarray] = field(default_factory=_empty)
    num_seen: int = 0
    _buffer: list[dict[str, np.ndarray]] = field(default_factory=list, repr=False)
    _buffered: int = 0
    # Fast path: while every group arrived in one chunk of at most k rows, nothing can be dropped,
    # so compaction is a concatenation (the per-image cap of standard LVIS AP, fed image by image).
    _groups_seen: set = field(default_factory=set, repr=False)
    _needs_select: bool = False

    def add(self, image_ids: np.ndarray, boxes: np.ndarray, scores: np.ndarray, category_ids: np.ndarray) -> None:
        n = len(scores)
        if n == 0:
            return
        seq = np.arange(self.num_seen, self.num_seen + n, dtype=np.int64)
        self.num_seen += n
        self._note_groups(image_ids, category_ids, n)
        self._buffer.append(
            {"image_ids": image_ids, "boxes": boxes, "scores": scores, "category_ids": category_ids, "seq": seq}
        )
        self._buffered += n
        if self._buffered >= max(_MIN_BUFFER, len(self.held["seq"])):
            self._compact()

    def _note_groups(self, image_ids: np.ndarray, category_ids: np.ndarray, n: int) -> None:
        if self.k is None or self._needs_select:
            return
        key = category_ids if self.group == "category" else image_ids
        first = int(key[0])
        if n > self.k or first in self._groups_seen or (n > 1 and not (key == first).all()):
            self._needs_select = True  # a group may exceed k: select exactly at compaction
        else:
            self._groups_seen.add(first)

    def _compact(self) -> None:
        if not self._buffer:
            return
        rows = _concat([self.held, *self._buffer])
        self._buffer, self._buffered = [], 0
        self.held = self._select(rows) if self._needs_select else rows

    def _select(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.k is None:
            return rows
        key = rows["category_ids"] if self.group == "category" else rows["image_ids"]
        # Sort by (group, -score, arrival); the first k rows of each group survive.
        order = np.lexsort((rows["seq"], -rows["scores"], key))
        key_sorted = key[order]
        starts = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
        group_start = np.repeat(starts, np.diff(np.r_[starts, len(key_sorted)]))
        keep = order[np.arange(len(order)) - group_start < self.k]
        keep.sort()  # back to arrival order, so k=None and k=∞ hand the engine the same sequence
        return {c: v[keep] for c, v in rows.items()}

    def result(self) -> dict[str, np.ndarray]:
        """The kept rows, in arrival order."""
        self._compact()
        return self.held

    def state_dict(self) -> dict:
        return {"k": self.k, "group": self.group, "num_seen": self.num_seen, "held": self.result()}

    @classmethod
    def merged(cls, states: list[dict]) -> GroupTopK:
        """Concatenate states in the given (rank) order, as if one process had seen their streams back to back."""
        if not states:
            raise ValueError("merged() needs at least one state")
        k, group = states[0]["k"], states[0]["group"]
        if any(s["k"] != k or s["group"] != group for s in states):
            raise ValueError("cannot merge top-K states with different k or group")
        parts, offset = [], 0
        for s in states:
            held = dict(s["held"])
            held["seq"] = held["seq"] + offset
            parts.append(held)
            offset += int(s["num_seen"])
        out = cls(k, group, num_seen=offset, _needs_select=True)
        out.held = out._select(_concat(parts))
        return out
