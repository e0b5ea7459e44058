"""The k best rows of each group, in linear time: the cut every protocol makes (see :mod:`~.topk`).

The cut is Python's stable ``sorted(rows, key=score, reverse=True)[:k]`` per group (lvis-api's
``limit_dets_per_image``, the large-vocab-devil Fixed-AP recipe): the k highest scores, a tie going to the
row that came first. A sort by (group, -score, arrival) finds it in O(n log n) with three keys; here
``np.partition`` finds each crowded group's k-th highest score instead, and the rows above it stay, as do
the first rows equal to it while the group has room. Same rows, several times faster on a results file
with twice the cap per image.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from detclip_bench.metrics.dense import dense_table_fits

__all__ = ["first_k_per_group"]

_RADIX_GROUPS = 1 << 16  # numpy sorts 16-bit keys stably by radix (linear time)


def first_k_per_group(groups: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Positions (increasing) of the rows kept when each group keeps its ``k`` highest ``scores``, a tie going
    to the earlier position. ``groups``: integer ids (int64, or float64 holding them exactly); ``scores``
    must be finite (the evaluators check them first)."""
    n = len(scores)
    if k <= 0:
        return np.zeros(0, np.int64)
    if n <= k:
        return np.arange(n)
    group, sizes = _crowded_groups(np.asarray(groups).astype(np.int64, copy=False), k)
    if group is None:
        return np.arange(n)
    crowded = group >= 0
    every = bool(crowded.all())
    rows = None if every else np.flatnonzero(crowded)
    g = group if every else group[rows]
    s = np.asarray(scores) if every else np.asarray(scores)[rows]
    kept = _cut(g, s, sizes, k)
    if every:
        return np.flatnonzero(kept)
    keep = ~crowded
    keep[rows[kept]] = True
    return np.flatnonzero(keep)


def _crowded_groups(ids: np.ndarray, k: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Per row, the number of its group among those with more than ``k`` rows (-1: not crowded), and those
    groups' sizes; (None, no sizes) when no group is crowded. Groups are numbered by size class (powers of
    two), then id, so that :func:`_thresholds` pads each class to at most twice its rows."""
    if dense_table_fits(int(ids.min()), int(ids.max()), len(ids)):
        counts, inverse = np.bincount(ids), ids
    else:
        _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    crowded = np.flatnonzero(counts > k)
    if not len(crowded):
        return None, counts[:0]
    sizes = counts[crowded]
    order = np.lexsort((crowded, np.frexp(sizes)[1]))  # size class, then id
    number = np.full(len(counts), -1, np.int64)
    number[crowded[order]] = np.arange(len(crowded))
    return number[inverse], sizes[order]


def _cut(g: np.ndarray, s: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """Which rows of crowded groups ``g`` (numbered 0..G-1, ``sizes`` rows each) survive, as a mask in
    arrival order."""
    kth, above = _thresholds(g, s, sizes, k)
    threshold = kth[g]
    kept = s > threshold
    tied = np.flatnonzero(s == threshold)
    tg = g[tied]
    order = _grouped(tg, len(sizes))  # ties by group, arrival order kept within each
    per_group = np.bincount(tg, minlength=len(sizes))
    rank = np.empty(len(tied), np.int64)
    rank[order] = np.arange(len(tied)) - (np.cumsum(per_group) - per_group)[tg[order]]
    kept[tied[rank < (k - above)[tg]]] = True  # room >= 1: fewer than k rows lie above the k-th
    return kept


def _thresholds(g: np.ndarray, s: np.ndarray, sizes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per crowded group, its k-th highest score and how many rows score above it: one ``np.partition`` per
    size class, over a matrix of the class's groups padded with -inf (a reshape when they are all of one
    size)."""
    if len(g) > 1 and (g[1:] < g[:-1]).any():  # rows not yet grouped (always so for Fixed AP's categories)
        order = _grouped(g, len(sizes))
        g, s = g[order], s[order]
    ends = np.cumsum(sizes)
    starts = ends - sizes
    size_class = np.frexp(sizes)[1]
    bounds = np.flatnonzero(np.r_[True, size_class[1:] != size_class[:-1], True])
    kth, above = np.empty(len(sizes)), np.empty(len(sizes), np.int64)
    for a, b in pairwise(bounds.tolist()):
        width = int(sizes[a:b].max())
        block = s[starts[a] : ends[b - 1]]
        if len(block) == (b - a) * width:
            matrix = block.reshape(b - a, width)
        else:
            matrix = np.full((b - a, width), -np.inf)
            column = np.arange(len(block)) - np.repeat(starts[a:b] - starts[a], sizes[a:b])
            matrix[g[starts[a] : ends[b - 1]] - a, column] = block
        part = np.partition(matrix, width - k, axis=1)
        kth[a:b] = part[:, width - k]
        above[a:b] = np.count_nonzero(part[:, width - k + 1 :] > kth[a:b, None], axis=1)
    return kth, above


def _grouped(g: np.ndarray, num_groups: int) -> np.ndarray:
    """The stable order that groups ``g`` (numbers 0..num_groups-1): a radix sort while they fit 16 bits."""
    return np.argsort(g.astype(np.uint16) if num_groups <= _RADIX_GROUPS else g, kind="stable")
