"""Image-level bootstrap of every AP the evaluators report, on the evaluator's own matches.

Why this is cheap: matching is per (image, category) and does not change when images are resampled, and
within a category the detections' score order does not change either. So the engine matches once, and a
bootstrap replicate is only a vector of per-image multiplicities ``w`` (how often each image was drawn),
applied as weights to the cumulative TP/FP counts of each category's already-sorted, already-matched
detections and to its GT count. No replicate re-matches or re-sorts anything.

**What a replicate equals.** A replicate with integer weights ``w`` gives exactly (bit for bit, see
``tests/metrics/test_bootstrap.py``) what the evaluator gives on the *physically duplicated* image set:
every image ``i`` present ``w[i]`` times (0: dropped), its copies renamed to fresh ids placed right after it
(so copies are adjacent in image-id order), their GT and federated lists copied, and in the detection
stream each detection followed by its copies. Where ties in score make order matter, that is the order
reproduced:

* the engine (lvis-api/pycocotools' rule) concatenates a category's detections image by image and
  stable-sorts by score, so tied detections of *one* image stay together copy after copy; a run of tied
  detections of one image is repeated block-wise (``d1 d2 d1' d2'``), not detection-wise;
* Fixed AP keeps the K best per category by (score, arrival), copies arriving right after their
  original: the K cut is a cut on the weighted cumulative count in that order, and a detection whose
  multiplicity straddles the cut keeps ``K - (weighted count before it)`` copies (its first copies, i.e.
  the original and the lowest-id copies), not all or none;
* per-image caps (LVIS standard 300/image, COCO's per-image and per-(image, category) caps) do not move.

**Fixed AP needs a deeper pool.** Dropping images lets detections *behind* the K-th of a category into the
top K. A Fixed-AP evaluator holds only its K best per category unless it was created with
``pool_per_category`` > K (``detclip-bench score --bootstrap`` holds 2K); a replicate that would need a
detection the pool never held raises ValueError instead of returning a wrong number.

Two reductions of the same per-point precision/recall: :meth:`BootstrapState.replicate` builds the engine's
precision/recall arrays and summarises them with the evaluator's own code (bit-exact; one replicate at a
time), while :func:`bootstrap_ap` sums each curve's 101-point interpolated precision directly from the
curve's steps, vectorised over replicates (the same numbers to ~1e-15; the 101-point arrays of 1,000
replicates would cost more than everything else together).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import numpy as np

from detclip_bench.metrics.coco_ap import CocoEvaluator
from detclip_bench.metrics.engine import (
    Accumulated,
    _mean_valid,
    coco_summary,
    evaluated,
    lvis_summary,
    per_category_ap,
)
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.metrics.lvis_ap import LvisEvaluator
from detclip_bench.metrics.streaming import StreamingEvaluator
from detclip_bench.metrics.topk import CATEGORY, IMAGE, SCORE

__all__ = ["BootstrapState", "bootstrap_ap", "paired_bootstrap", "resample_weights"]

_EPS = np.spacing(1.0)  # the engine's precision is tp / (fp + tp + eps), as pycocotools'
_ROWS_PER_MATCH_BATCH = 15_000  # detections per engine call while reading matches (bounds its per-pair records)
_CHUNK_BYTES = 192 * 2**20  # working memory of the chunks of replicates in flight
# threads over chunks of replicates: numpy frees the GIL in the heavy loops; the values do not depend on it
_WORKERS = min(8, os.cpu_count() or 1)


def resample_weights(num_images: int, n_replicates: int, *, seed: int = 0) -> np.ndarray:
    """``(n_replicates, num_images)`` multiplicities: each row is how often each image is drawn when
    ``num_images`` images are drawn with replacement (the ordinary image-level bootstrap)."""
    return np.concatenate(list(_weight_chunks(num_images, n_replicates, seed=seed, chunk=max(n_replicates, 1))))


def _weight_chunks(num_images: int, n_replicates: int, *, seed: int, chunk: int) -> Iterator[np.ndarray]:
    """The same rows as :func:`resample_weights`, ``chunk`` at a time (one generator draws row after row,
    so the rows do not depend on the chunk size)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_replicates, chunk):
        rows = min(chunk, n_replicates - start)
        out = np.empty((rows, num_images), np.int32)
        for r in range(rows):
            out[r] = np.bincount(rng.integers(0, num_images, num_images), minlength=num_images)
        yield out


@dataclass
class _Layout:
    """Where every curve's points sit in the weighted detection sequence (see ``_layout``): events ``x`` are a
    family's detections (max-dets column, category, area) in the engine's order, events ``z`` per IoU
    threshold its TPs and what it ignores, TP events the curves' points."""

    depth: int  # tie blocks unrolled for multiplicities up to this
    row: np.ndarray  # (X,) evaluated row of each family event
    clip_pos: np.ndarray  # family events of a repeated tie block: weight = [multiplicity > rep]
    clip_rep: np.ndarray
    z_pos: np.ndarray  # (Z,) family event of each threshold event
    z_ign: np.ndarray  # (Z,) ignored at that threshold (else a TP)
    tp_z: np.ndarray  # (P,) threshold event of each TP
    tp_x: np.ndarray  # (P,) family event of each TP
    tp_first: np.ndarray  # (P,) first TP of its curve
    tp_seg: np.ndarray  # (P,) its curve
    tp_ka: np.ndarray  # (P,) its (category, area)
    seg_fam_start: np.ndarray  # (S,) first family event of each curve's family
    seg_z_start: np.ndarray  # (S,) first threshold event of each curve
    seg_tp_start: np.ndarray  # (S,) TP range of each curve
    seg_tp_end: np.ndarray
    segs_with_tp: np.ndarray
    pad_classes: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (gather index, valid flat pos, TP index)


@dataclass
class _Curves:
    """Per chunk of replicates: every TP point's precision and recall bin, and per curve its TP total."""

    pr: np.ndarray  # (R, P)
    bins: np.ndarray  # (R, P): how many recall thresholds the point reaches
    tp_total: np.ndarray  # (R, S)
    npos: np.ndarray  # (R, K * A)


class BootstrapState:
    """Everything a replicate needs, read once from an evaluator: its kept detections, the engine's
    per-detection matches on them (every IoU threshold and area range), the GT counts per
    (image, category, area), and for Fixed AP the pool the K cut is taken from.

    Weights are per image, aligned with :attr:`image_ids` (the GT's image ids, sorted).

    Args:
        evaluator: a :class:`~detclip_bench.metrics.coco_ap.CocoEvaluator` or
            :class:`~detclip_bench.metrics.lvis_ap.LvisEvaluator` after its detections were fed (and
            synchronised across ranks). Its state is read, not changed.
    """

    def __init__(self, evaluator: StreamingEvaluator) -> None:
        if not isinstance(evaluator, CocoEvaluator | LvisEvaluator):
            raise TypeError(f"expected a CocoEvaluator or LvisEvaluator, got {type(evaluator).__name__}")
        gt: GroundTruth = evaluator.gt
        self.gt = gt
        self.image_ids = gt.image_ids
        self.category_ids = gt.category_ids
        self.fixed = isinstance(evaluator, LvisEvaluator) and evaluator.protocol == "fixed"
        if isinstance(evaluator, LvisEvaluator):
            self.protocol = f"lvis-{evaluator.protocol}"
            self.ar_label = -1 if self.fixed else evaluator.max_dets_per_image
        else:
            self.protocol = "coco"
            self.ar_label = None
        self.max_dets = evaluator.engine_max_dets
        if self.fixed:
            pool = evaluator.pool.result()  # all held rows: the K cut moves under resampling
            self.topk = evaluator.topk_per_category
            self._prepare_cut(pool, depth=evaluator.pool.k)
            arr = pool.engine[self._pool_eval]
        else:
            self.topk = None
            arr = evaluator.engine_rows(evaluator.kept_rows())
        self._num_rows = len(arr)
        self._row_image = np.searchsorted(gt.image_ids, arr[:, IMAGE]).astype(np.intp)
        self._read_matches(arr)
        self._layouts: _Layout | None = None
        self.point = self.replicate(np.ones(len(self.image_ids), np.int32))

    # -- set-up ------------------------------------------------------------------------------
    def _prepare_cut(self, pool, *, depth: int) -> None:
        """Fixed AP: the held rows in cut order (category, -score, arrival), as GroupTopK selects."""
        gt = self.gt
        e = pool.engine
        cat = np.searchsorted(gt.category_ids, e[:, CATEGORY])
        order = np.lexsort((pool.seq, -e[:, SCORE], cat))
        self._cut_image = np.searchsorted(gt.image_ids, e[order, IMAGE]).astype(np.intp)
        held = np.bincount(cat, minlength=len(gt.category_ids))
        self._cut_start = np.r_[0, np.cumsum(held)]
        self._cut_held = held
        per_image = np.unique(cat[order] * len(gt.image_ids) + self._cut_image, return_counts=True)
        self._cut_norm = np.sqrt(
            np.bincount(
                per_image[0] // len(gt.image_ids), weights=per_image[1].astype(np.float64) ** 2, minlength=len(held)
            )
        )
        # A category holding `depth` rows may have had more: those never held cannot enter a replicate.
        self._cut_full = held >= depth
        self._pool_depth = depth
        verified = gt.federated_mask(e[:, IMAGE], e[:, CATEGORY])
        self._pool_eval = np.flatnonzero(verified)  # evaluated rows, in arrival order (as the evaluator)
        eval_pos = np.full(len(e), -1, np.int64)
        eval_pos[self._pool_eval] = np.arange(len(self._pool_eval))
        self._cut_eval = eval_pos[order]  # per cut-order position: its evaluated row, or -1

    def _read_matches(self, arr: np.ndarray) -> None:
        """The engine's matches, category batch by category batch (its per-pair records are Python objects,
        ~2 KB per detection and area range, so they are read in batches and dropped)."""
        gt = self.gt
        K = len(gt.category_ids)
        per_cat = np.bincount(np.searchsorted(gt.category_ids, arr[:, CATEGORY]), minlength=K)
        per_cat = per_cat + np.array([gt.num_gt[int(c)] for c in gt.category_ids], np.int64)
        batch_of = np.cumsum(per_cat) // _ROWS_PER_MATCH_BATCH
        entries: list[tuple] = []
        dets: list[tuple] = []
        n_entries = 0
        for b in np.unique(batch_of):
            cats = gt.category_ids[batch_of == b].tolist()
            ev = evaluated(gt, arr, max_dets=self.max_dets, category_ids=cats)
            params = ev.params
            if not entries:
                self.rec_thrs = np.asarray(params.rec_thrs, np.float64)
                n_thr = len(self.rec_thrs)
                self._linear_thrs = np.array_equal(self.rec_thrs, np.linspace(0, 1, n_thr))
                self._thr_padded = np.r_[self.rec_thrs, np.full(4, np.inf)]
                self.T = len(params.iou_thrs)
                areas = {tuple(a): i for i, a in enumerate(params.area_rng)}
                self.A = len(areas)
                self.M = len(params.max_dets)
                self.max_det_list = list(params.max_dets)
            recs = [x for x in ev.eval_imgs if x is not None]
            del ev
            ent, det = _columns(recs, areas, self.T, gt)
            del recs
            entries.append(ent)
            dets.append((det[0] + n_entries, *det[1:]))  # record numbers run on across batches
            n_entries += len(ent[0])
        e_k, e_a, e_img, e_ngt = (np.concatenate([x[i] for x in entries]) for i in range(4))
        e_order = np.arange(n_entries)  # the engine's record order (batches go by category, so per category too)
        d_entry, d_j, d_row, d_matched, d_ignored = (np.concatenate([x[i] for x in dets]) for i in range(5))
        self.K = K
        # GT counted per (category, area) and image: the weighted npos
        has = e_ngt > 0
        ka = e_k[has] * self.A + e_a[has]
        o = np.argsort(ka, kind="stable")
        self._ngt_ka, self._ngt_img, self._ngt_cnt = ka[o], e_img[has][o], e_ngt[has][o]
        # The engine's order within a (category, area): entries in its list order, stable by -score.
        score = arr[d_row, SCORE]
        k, a, order_e = e_k[d_entry], e_a[d_entry], e_order[d_entry]
        base = np.lexsort((d_j, order_e, -score, a, k))
        self._build_events(base, k, a, d_entry, d_j, d_row, score, d_matched, d_ignored)

    def _build_events(self, base, k, a, entry, j, row, score, matched, ignored) -> None:
        """The detections of every curve family (max-dets column, category, area) in the engine's order, with
        per IoU threshold whether each is a TP or ignored. One cumulative count per family serves all ten
        thresholds: a threshold only subtracts the few detections it ignores."""
        M, K, A = self.M, self.K, self.A
        kb, ab, eb, sb, jb, rb = k[base], a[base], entry[base], score[base], j[base], row[base]
        new_block = np.r_[True, (eb[1:] != eb[:-1]) | (sb[1:] != sb[:-1])] if len(base) else np.zeros(0, bool)
        block = np.cumsum(new_block)
        matched_b, ignored_b = matched[base], ignored[base]
        counted = ~ignored_b.all(axis=1)  # scored at some threshold
        parts = []
        for m in range(M):
            idx = np.flatnonzero(counted & (jb < self.max_det_list[m]))
            parts.append(
                (
                    rb[idx],
                    (m * K + kb[idx]) * A + ab[idx],
                    block[idx],
                    matched_b[idx] & ~ignored_b[idx],
                    ignored_b[idx],
                )
            )
        self._ref_row, self._ref_fam, blk, self._ref_tp, self._ref_ign = (
            np.concatenate([x[i] for x in parts]) for i in range(5)
        )
        self.n_fam = M * K * A
        self.n_seg = self.T * self.n_fam
        # Runs of tied detections of one image in one family: with several of them and a TP among them, their
        # copies interleave block-wise (see the module docstring), so they are repeated, not weighted.
        n = len(blk)
        fam = self._ref_fam
        starts = np.flatnonzero(np.r_[True, (blk[1:] != blk[:-1]) | (fam[1:] != fam[:-1])]) if n else np.zeros(0, int)
        lengths = np.diff(np.r_[starts, n])
        # A run whose scored detections are all TPs (or all FPs) at every threshold gives the same points
        # either way; only a TP and an FP of one run at one threshold make the interleaving visible.
        if n:
            fp = ~self._ref_tp & ~self._ref_ign
            mixed = (np.add.reduceat(self._ref_tp, starts, axis=0) > 0) & (np.add.reduceat(fp, starts, axis=0) > 0)
            repeat = (lengths >= 2) & mixed.any(axis=1)
        else:
            repeat = np.zeros(0, bool)
        self._run_start, self._run_len, self._run_repeat = starts, lengths, repeat

    def _layout(self, depth: int) -> _Layout:
        """The event sequence for multiplicities up to ``depth``: repeated tie blocks unrolled ``depth`` times
        (copies beyond a replicate's multiplicity get weight 0 and only repeat an earlier point)."""
        depth = max(depth, 1)
        if not self._run_repeat.any():
            depth = 1
        cached = self._layouts
        if cached is not None and cached.depth >= depth:
            return cached
        starts, lengths = self._run_start, self._run_len
        reps = np.where(self._run_repeat, depth, 1)
        out_len = lengths * reps
        total = int(out_len.sum())
        g = np.repeat(np.arange(len(starts)), out_len)
        local = np.arange(total) - np.repeat(np.cumsum(out_len) - out_len, out_len)
        rep = local // lengths[g]
        ev = starts[g] + local % lengths[g]
        fam = self._ref_fam[ev]
        clip_pos = np.flatnonzero(self._run_repeat[g])
        fam_start = np.searchsorted(fam, np.arange(self.n_fam))
        # Per threshold, the events that matter: its TPs (the curve's points) and what it ignores.
        z_pos, z_tp, z_seg = [], [], []
        tp_x, ign_x = self._ref_tp[ev], self._ref_ign[ev]
        for t in range(self.T):
            pos = np.flatnonzero(tp_x[:, t] | ign_x[:, t])
            z_pos.append(pos)
            z_tp.append(tp_x[pos, t])
            z_seg.append(t * self.n_fam + fam[pos])
        z_pos, z_tp, z_seg = np.concatenate(z_pos), np.concatenate(z_tp), np.concatenate(z_seg)
        n_seg = self.n_seg
        tp_z = np.flatnonzero(z_tp)
        tp_seg = z_seg[tp_z]
        seg_tp_start = np.searchsorted(tp_seg, np.arange(n_seg))
        seg_tp_end = np.searchsorted(tp_seg, np.arange(n_seg), side="right")
        segs_with_tp = np.flatnonzero(seg_tp_end > seg_tp_start)
        # Segmented suffix maxima as padded 2-D blocks, curves grouped by length (padding < 2x).
        sizes = (seg_tp_end - seg_tp_start)[segs_with_tp]
        width = np.left_shift(1, np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64))
        pad_classes = []
        for w in np.unique(width):
            sel = segs_with_tp[width == w]
            gather = seg_tp_start[sel][:, None] + np.arange(w)[None, :]
            valid = np.arange(w)[None, :] < (seg_tp_end[sel] - seg_tp_start[sel])[:, None]
            gather = np.where(valid, gather, len(tp_z))  # padding reads a 0 column
            pos = np.flatnonzero(valid.ravel())
            pad_classes.append((gather.astype(np.intp), pos, gather.ravel()[pos]))
        z_seg_start = np.searchsorted(z_seg, np.arange(n_seg))
        layout = _Layout(
            depth=depth,
            row=self._ref_row[ev].astype(np.intp),
            clip_pos=clip_pos,
            clip_rep=rep[clip_pos].astype(np.int32),
            z_pos=z_pos,
            z_ign=~z_tp,
            tp_z=tp_z,
            tp_x=z_pos[tp_z],
            tp_first=seg_tp_start[tp_seg],
            tp_seg=tp_seg,
            tp_ka=tp_seg % (self.K * self.A),
            seg_fam_start=fam_start[np.arange(n_seg) % self.n_fam],
            seg_z_start=z_seg_start,
            seg_tp_start=seg_tp_start,
            seg_tp_end=seg_tp_end,
            segs_with_tp=segs_with_tp,
            pad_classes=pad_classes,
        )
        self._layouts = layout
        return layout

    # -- weights -----------------------------------------------------------------------------
    def check_weights(self, weights) -> np.ndarray:
        """``weights`` as an ``(R, num_images)`` int32 matrix (one row for a 1-D vector); ValueError unless it
        holds one non-negative integer per image of :attr:`image_ids`."""
        w = np.asarray(weights)
        if w.ndim == 1:
            w = w[None, :]
        n = len(self.image_ids)
        if w.ndim != 2 or w.shape[1] != n:
            raise ValueError(
                f"weights must hold one multiplicity per image ({n} images, in the order of image_ids), "
                f"got shape {np.shape(weights)}"
            )
        if w.dtype.kind == "f":
            if not np.isfinite(w).all() or (w != np.round(w)).any():
                raise ValueError("weights must be whole numbers (how often each image is drawn)")
        elif w.dtype.kind not in "iub":
            raise ValueError(f"weights must be integers, got dtype {w.dtype}")
        if w.size and w.min() < 0:
            raise ValueError(f"weights must be >= 0 (an image is drawn 0 or more times), got {w.min()}")
        if w.size and w.max() > np.iinfo(np.int32).max // max(self._num_rows, 1):
            raise ValueError(f"weights up to {w.max()} overflow the cumulative counts")
        return w.astype(np.int32)

    def _multiplicity(self, W: np.ndarray, *, wmax: int | None = None) -> np.ndarray:
        """Per replicate and evaluated row: how many copies enter the engine (the image's weight, or fewer
        where the Fixed-AP cut falls on it). ``wmax``: a bound on ``W`` (default its maximum)."""
        mult = W[:, self._row_image]
        if not self.fixed:
            return mult
        K = self.topk
        pos, seg_start, seg_of, cand = self._cut_rows(int(W.max(initial=0)) if wmax is None else wmax)
        # Cauchy-Schwarz: a category's weighted count is at most |w| |its rows per image|; most cannot reach K
        norm = float(np.sqrt((W.astype(np.float64) ** 2).sum(axis=1)).max(initial=0.0))
        reach = (self._cut_norm[cand] * norm * (1 + 1e-9) > K) | self._cut_full[cand]
        if not reach.all():
            keep = np.repeat(reach, np.diff(np.r_[seg_start, len(pos)]))
            cand, pos = cand[reach], pos[keep]
            n = np.bincount(seg_of[keep], minlength=len(reach))[reach]
            seg_start = np.r_[0, np.cumsum(n)[:-1]].astype(np.intp)
            seg_of = np.repeat(np.arange(len(cand)), n)
        if not len(cand):
            return mult
        wk = W[:, self._cut_image[pos]].astype(np.int64)
        cs = np.cumsum(wk, axis=1)
        base = np.where(seg_start > 0, cs[:, np.maximum(seg_start - 1, 0)], 0)  # (R, C)
        before = cs - wk - base[:, seg_of]
        m = np.clip(K - before, 0, wk)
        totals = np.add.reduceat(wk, seg_start, axis=1)
        short = (totals < K) & self._cut_full[cand][None, :]
        if short.any():
            r, c = np.argwhere(short)[0]
            cid = int(self.category_ids[cand[c]])
            raise ValueError(
                f"replicate {r}: category {cid} has a weighted count of {int(totals[r, c])} < K={K} over the "
                f"{self._pool_depth} detections the evaluator held for it, so detections it never held would "
                "enter the top K; create the evaluator with a deeper pool_per_category (e.g. 2*K)"
            )
        ev = self._cut_eval[pos]
        on = ev >= 0
        mult[:, ev[on]] = m[:, on]
        return mult

    def _cut_rows(self, wmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Held rows (cut order) of the categories where a replicate with weights <= ``wmax`` can reach K (or
        run short of a full pool): (positions, start of each category, category of each, categories)."""
        key = wmax
        cache = self.__dict__.setdefault("_cut_cache", {})
        if key not in cache:
            cand = np.flatnonzero((self._cut_held * wmax > self.topk) | self._cut_full)
            lo, hi = self._cut_start[cand], self._cut_start[cand + 1]
            n = hi - lo
            pos = np.repeat(lo - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(int(n.sum()))
            cache.clear()
            cache[key] = (pos, np.r_[0, np.cumsum(n)[:-1]].astype(np.intp), np.repeat(np.arange(len(cand)), n), cand)
        return cache[key]

    # -- curves ------------------------------------------------------------------------------
    def _curves(self, W: np.ndarray, *, wmax: int | None = None) -> tuple[_Layout, _Curves]:
        mult = self._multiplicity(W, wmax=wmax)
        R = len(W)
        top = int(mult.max(initial=1)) if wmax is None else wmax
        lay = self._layout(top)
        dtype = np.int64 if max(len(lay.row), len(lay.z_pos)) * max(top, 1) >= 2**31 else np.int32
        w = mult[:, lay.row]
        if len(lay.clip_pos):
            wc = w[:, lay.clip_pos] - lay.clip_rep
            np.clip(wc, 0, 1, out=wc)
            w[:, lay.clip_pos] = wc
        X, P = w.shape[1], len(lay.tp_z)
        # detections counted by the family up to each point, minus those this threshold ignores, ...
        fam_cum = np.zeros((R, X + 1), dtype)
        np.cumsum(w, axis=1, out=fam_cum[:, 1:])
        wz = w[:, lay.z_pos]
        del w
        ign_cum = np.zeros((R, wz.shape[1] + 1), dtype)
        np.cumsum(np.where(lay.z_ign, wz, 0), axis=1, out=ign_cum[:, 1:])
        # ... and TPs up to each point; every count starts from its curve's start (one small gather per curve)
        tp_cum = np.zeros((R, P + 1), dtype)
        np.cumsum(wz[:, lay.tp_z], axis=1, out=tp_cum[:, 1:])
        del wz
        start = fam_cum[:, lay.seg_fam_start] - ign_cum[:, lay.seg_z_start]  # (R, S)
        dets = fam_cum[:, lay.tp_x + 1] - ign_cum[:, lay.tp_z + 1]
        dets -= start[:, lay.tp_seg]
        del fam_cum, ign_cum, start
        tp = tp_cum[:, 1:] - tp_cum[:, lay.seg_tp_start][:, lay.tp_seg]
        tp_total = (tp_cum[:, lay.seg_tp_end] - tp_cum[:, lay.seg_tp_start]).astype(np.float64)
        del tp_cum
        tp = tp.astype(np.float64)
        npos = self._npos(W)
        with np.errstate(divide="ignore", invalid="ignore"):
            pr = tp / (dets + _EPS)  # the engine's tp / (fp + tp + eps); dets = fp + tp exactly
            rc = np.divide(tp, npos[:, lay.tp_ka], out=tp)
        return lay, _Curves(pr, self._bins(rc), tp_total, npos)

    def _bins(self, rc: np.ndarray) -> np.ndarray:
        """How many recall thresholds each recall reaches (the engine's rule: threshold <= recall)."""
        thr = self.rec_thrs
        n = len(thr)
        if not self._linear_thrs:
            return np.searchsorted(thr, rc.ravel(), side="right").reshape(rc.shape)
        # thresholds are linspace(0, 1, n): with j = trunc(rc * (n - 1)) every threshold below j is <= rc and
        # every one from j + 2 on is > rc, so two exact comparisons decide the count (a binary search is ~4x slower)
        # (a curve without GT has rc = inf or NaN; fmin makes it 1, and its bins are never read)
        x = np.fmin(rc, 1.0)
        j = (x * (n - 1)).astype(np.int32)
        padded = self._thr_padded
        out = j + (padded.take(j) <= x)
        out += padded.take(j + 1) <= x
        return out

    def _npos(self, W: np.ndarray) -> np.ndarray:
        """(R, K * A): weighted non-ignored GT per (category, area)."""
        out = np.zeros((len(W), self.K * self.A), np.float64)
        if len(self._ngt_ka):
            contrib = W[:, self._ngt_img] * self._ngt_cnt
            starts = np.flatnonzero(np.r_[True, self._ngt_ka[1:] != self._ngt_ka[:-1]])
            out[:, self._ngt_ka[starts]] = np.add.reduceat(contrib, starts, axis=1)
        return out

    # -- exact path: the engine's arrays, the evaluator's summary -------------------------------
    def replicate(self, weights, *, groups: Mapping[str, Sequence[int]] | None = None) -> dict[str, float]:
        """The evaluator's metrics on the image set ``weights`` describes (one multiplicity per image of
        :attr:`image_ids`), built as the engine's precision/recall arrays and summarised by the evaluator's
        own code, so that all-ones weights give its numbers bit for bit. ``groups`` adds ``AP[name]``: the
        mean over the precision cells of the named categories (the rule of APr/APc/APf)."""
        W = self.check_weights(weights)
        if len(W) != 1:
            raise ValueError("replicate() takes one weight vector; use bootstrap_ap for many")
        acc = self._accumulated(W)
        out = self._summary(acc)
        for name, idx in self._group_index(groups).items():
            out[f"AP[{name}]"] = _mean_valid(acc.precision[:, :, idx, 0, -1])
        return out

    def replicate_per_category(self, weights) -> dict[int, float]:
        """Per-category AP (NaN without usable GT) of one replicate, as the evaluator's per-category table."""
        return per_category_ap(self._accumulated(self.check_weights(weights)[:1]))

    def _accumulated(self, W: np.ndarray) -> Accumulated:
        lay, cur = self._curves(W)
        n_seg, n_bins = self.n_seg, len(self.rec_thrs)
        table = np.zeros(n_seg * n_bins, np.float64)
        np.maximum.at(table, lay.tp_seg * n_bins + np.minimum(cur.bins[0], n_bins) - 1, cur.pr[0])
        q = np.maximum.accumulate(table.reshape(n_seg, n_bins)[:, ::-1], axis=1)[:, ::-1]
        npos = cur.npos[0][np.arange(n_seg) % (self.K * self.A)]
        valid = npos > 0
        q[~valid] = -1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = np.where(valid, cur.tp_total[0] / npos, -1.0)
        shape = (self.T, self.M, self.K, self.A)
        precision = q.reshape(*shape, n_bins).transpose(0, 4, 2, 3, 1)  # (T, R, K, A, M) as the engine's
        return Accumulated(precision, recall.reshape(shape).transpose(0, 2, 3, 1), self.category_ids)

    def _summary(self, acc: Accumulated) -> dict[str, float]:
        if self.protocol == "coco":
            return coco_summary(acc, self.max_det_list)
        return lvis_summary(acc, self.gt, ar_label=self.ar_label)

    def _group_index(self, groups: Mapping[str, Sequence[int]] | None) -> dict[str, np.ndarray]:
        out = {}
        for name, ids in (groups or {}).items():
            ids = np.asarray(list(ids), np.int64)
            pos = np.minimum(np.searchsorted(self.category_ids, ids), len(self.category_ids) - 1)
            known = self.category_ids[pos] == ids
            if not known.all():
                raise ValueError(f"group {name!r}: category ids {ids[~known].tolist()[:10]} are not in the GT")
            out[str(name)] = np.unique(pos)
        return out

    # -- fast path: every key of many replicates ------------------------------------------------
    def replicates(
        self,
        weights,
        *,
        groups: Mapping[str, Sequence[int]] | None = None,
        per_category: bool = False,
        workers: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Every key of :meth:`replicate` for each row of ``weights`` (``(R, num_images)``), as ``(R,)`` arrays
        (-1 where the key is undefined in that replicate), plus ``"per_category"`` ``(R, K)`` (NaN: no GT)
        when asked. Each curve's 101-point sum comes straight from its steps; equal to :meth:`replicate`
        to ~1e-15, not bit for bit (the evaluator's mean sums the 101-point array pairwise)."""
        W = self.check_weights(weights)
        group_idx = self._group_index(groups)
        if not len(W):
            raise ValueError("weights hold no replicate")
        wmax = max(int(W.max()), 1)
        self._layout(wmax)  # built once, before the workers share it
        if self.fixed:
            self._cut_rows(wmax)
        workers = max(1, min(workers or _WORKERS, len(W)))
        per_rep = self._bytes_per_replicate()
        chunk = max(1, min(64, _CHUNK_BYTES // workers // max(per_rep, 1)))
        blocks = [W[s : s + chunk] for s in range(0, len(W), chunk)]

        def one(block: np.ndarray) -> dict[str, np.ndarray]:
            return self._fast(block, group_idx, per_category, wmax)

        if workers == 1 or len(blocks) == 1:
            parts = [one(b) for b in blocks]
        else:  # numpy releases the GIL in the heavy loops: chunks run side by side
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(one, blocks))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _bytes_per_replicate(self) -> int:
        lay = self._layouts or self._layout(1)
        return 16 * len(lay.row) + 16 * len(lay.z_pos) + 120 * len(lay.tp_z) + 48 * self.n_seg + 8 * self._num_rows

    def _fast(
        self, W: np.ndarray, group_idx: dict[str, np.ndarray], per_category: bool, wmax: int
    ) -> dict[str, np.ndarray]:
        lay, cur = self._curves(W, wmax=wmax)
        R, P = cur.pr.shape
        n_bins = len(self.rec_thrs)
        bins = np.minimum(cur.bins, n_bins)
        # Sum over thresholds of the interpolated precision = sum over points of (suffix max of precision)
        # x (thresholds first reached at that point).
        step = bins.copy()
        step[:, 1:] -= bins[:, :-1]
        first = lay.tp_first == np.arange(P)
        step[:, first] = bins[:, first]
        suffix = np.zeros((R, P), np.float64)
        ext = np.zeros((R, P + 1), np.float64)
        ext[:, :P] = cur.pr
        for gather, pos, dst in lay.pad_classes:
            if gather.shape[1] == 1:  # one point: its own maximum
                suffix[:, dst] = cur.pr[:, dst]
                continue
            v = ext[:, gather]
            v = np.maximum.accumulate(v[:, :, ::-1], axis=2)[:, :, ::-1]
            suffix[:, dst] = v.reshape(R, -1)[:, pos]
        contrib = suffix * step
        sums = np.zeros((R, self.n_seg), np.float64)
        if len(lay.segs_with_tp):
            sums[:, lay.segs_with_tp] = np.add.reduceat(contrib, lay.seg_tp_start[lay.segs_with_tp], axis=1)
        shape = (R, self.T, self.M, self.K, self.A)
        npos = cur.npos.reshape(R, self.K, self.A)
        valid = npos > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = cur.tp_total / np.tile(cur.npos, (1, self.T * self.M))
        sums, recall = sums.reshape(shape), recall.reshape(shape)
        last = self.M - 1
        out: dict[str, np.ndarray] = {}
        for key, kind, t_sel, m, a, cat_mask in self._key_specs():
            out[key] = _cell_mean(
                sums if kind == "P" else recall, valid, t_sel, m, a, cat_mask, n_bins if kind == "P" else 1
            )
        for name, idx in group_idx.items():
            mask = np.zeros(self.K, bool)
            mask[idx] = True
            out[f"AP[{name}]"] = _cell_mean(sums, valid, slice(None), last, 0, mask, n_bins)
        if per_category:
            with np.errstate(divide="ignore", invalid="ignore"):
                ap = sums[:, :, last, :, 0].sum(axis=1) / (self.T * n_bins)
            out["per_category"] = np.where(valid[:, :, 0], ap, np.nan)
        return out

    def _key_specs(self) -> list[tuple]:
        """(key, P or R, IoU selection, max-dets column, area, category mask) for every key of the summary."""
        last = self.M - 1
        every = slice(None)
        specs = [
            ("AP", "P", every, last, 0, None),
            ("AP50", "P", slice(0, 1), last, 0, None),
            ("AP75", "P", slice(5, 6), last, 0, None),
            ("APs", "P", every, last, 1, None),
            ("APm", "P", every, last, 2, None),
            ("APl", "P", every, last, 3, None),
        ]
        if self.protocol == "coco":
            specs += [(f"AR{md}", "R", every, m, 0, None) for m, md in enumerate(self.max_det_list)]
            specs += [(f"AR{s}", "R", every, last, a, None) for s, a in zip("sml", range(1, 4), strict=True)]
            return specs
        freq = np.array([self.gt.frequency[int(c)] for c in self.category_ids])
        specs += [(f"AP{g}", "P", every, last, 0, freq == g) for g in "rcf"]
        specs.append((f"AR@{self.ar_label}", "R", every, last, 0, None))
        specs += [
            (f"AR{s}@{self.ar_label}", "R", every, last, a, None) for s, a in zip("sml", range(1, 4), strict=True)
        ]
        return specs


def _cell_mean(values, valid, t_sel, m, a, cat_mask, cells_per_curve: int) -> np.ndarray:
    """Mean over the cells of the valid curves (categories with GT in that replicate); -1 where none."""
    v = values[:, t_sel, m, :, a]  # (R, t, K)
    ok = valid[:, :, a] if cat_mask is None else valid[:, :, a] & cat_mask[None, :]
    n_t = v.shape[1]
    total = np.where(ok, v.sum(axis=1), 0.0).sum(axis=1)
    count = ok.sum(axis=1) * n_t * cells_per_curve
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), -1.0)


def _columns(recs: list[dict], areas: dict, T: int, gt: GroundTruth) -> tuple[tuple, tuple]:
    """The engine's per-(image, category, area) records as columns: per record (category index, area index,
    image position, non-ignored GT), per detection (record, rank in record, row, matched[T], ignored[T])."""
    n = len(recs)
    cats = np.fromiter(map(itemgetter("category_id"), recs), np.int64, n)
    imgs = np.fromiter(map(itemgetter("image_id"), recs), np.int64, n)
    area = np.fromiter((areas[tuple(r)] for r in map(itemgetter("aRng"), recs)), np.int64, n)
    dt_ids = list(map(itemgetter("dtIds"), recs))
    nd = np.fromiter(map(len, dt_ids), np.int64, n)
    total = int(nd.sum())
    rows = np.fromiter(chain.from_iterable(dt_ids), np.int64, total) - 1  # the engine numbers rows from 1
    matched = np.fromiter(chain.from_iterable(chain.from_iterable(map(itemgetter("dtMatched"), recs))), bool, T * total)
    ignored = np.fromiter(chain.from_iterable(chain.from_iterable(map(itemgetter("dtIgnore"), recs))), bool, T * total)
    ngt = np.fromiter((g.count(False) for g in map(itemgetter("gtIgnore"), recs)), np.int64, n)
    entry = np.repeat(np.arange(n), nd)
    off = np.cumsum(nd) - nd
    j = np.arange(total) - off[entry]
    # each record lays its flags out IoU-threshold-major: [t][detection]
    flat = (T * off[entry] + j)[:, None] + nd[entry][:, None] * np.arange(T)[None, :]
    k = np.searchsorted(gt.category_ids, cats)
    img = np.searchsorted(gt.image_ids, imgs)
    return (k, area, img, ngt), (entry, j, rows, matched[flat], ignored[flat])


# -- the public entry points ----------------------------------------------------------------------
def _state(evaluation: BootstrapState | StreamingEvaluator) -> BootstrapState:
    return evaluation if isinstance(evaluation, BootstrapState) else BootstrapState(evaluation)


def _interval(values: np.ndarray, confidence: float) -> tuple[list[float] | None, float | None, int, float | None]:
    """(percentile interval, standard error, replicates used, replicate mean) over the finite values."""
    ok = values[np.isfinite(values)]
    if not len(ok):
        return None, None, 0, None
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(ok, [alpha, 100 - alpha])
    se = float(np.std(ok, ddof=1)) if len(ok) > 1 else 0.0
    return [float(lo), float(hi)], se, len(ok), float(np.mean(ok))


def _check_args(n_replicates: int, confidence: float) -> None:
    if n_replicates < 1:
        raise ValueError(f"n_replicates must be >= 1, got {n_replicates}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def bootstrap_ap(
    evaluation: BootstrapState | StreamingEvaluator,
    *,
    n_replicates: int = 1000,
    seed: int = 0,
    groups: Mapping[str, Sequence[int]] | None = None,
    confidence: float = 0.95,
    per_category: bool = False,
    return_replicates: bool = False,
) -> dict[str, dict]:
    """Percentile bootstrap intervals for every key the evaluator reports, resampling images.

    The interval covers the variation from drawing another image set of the same size from the same
    distribution as this one (images resampled with replacement, everything else fixed): not another
    dataset, not another training seed (docs/eval.md §7).

    Returns ``{key: {"point", "interval": [lo, hi], "se", "bias", "n_replicates", "seed", "confidence"}}`` for every
    metric key, plus ``AP[name]`` per entry of ``groups`` (``{name: [category ids]}``: the mean over that
    group's precision cells, as APr/APc/APf are), plus ``per_category`` (``{category id: {...}}``) when asked.
    ``point`` is the evaluator's own value; replicates where a key is undefined (-1: no GT left for it) are
    left out of its interval and ``n_replicates`` says how many remained. ``bias`` is the replicates' mean
    minus the point: AP's interpolated precision is a running maximum, which resampling noise tends to push
    up, so replicates of AP can sit above the point and the percentile interval may even miss it
    (docs/eval.md §7). ``return_replicates`` adds the
    replicate values (``"replicates"``, a numpy array).
    """
    _check_args(n_replicates, confidence)
    state = _state(evaluation)
    ones = np.ones(len(state.image_ids), np.int32)
    points = {**state.point, **state.replicate(ones, groups=groups)} if groups else dict(state.point)
    reps = _run(state, None, n_replicates, seed, groups, per_category)[0]
    out: dict[str, dict] = {}
    for key, point in points.items():
        values = reps[key]
        interval, se, n, mean = _interval(values[values > -1], confidence) if point > -1 else (None, None, 0, None)
        entry = {
            "point": point,
            "interval": interval,
            "se": se,
            "bias": None if mean is None else mean - point,
            "n_replicates": n,
            "seed": seed,
            "confidence": confidence,
        }
        if return_replicates:
            entry["replicates"] = reps[key]
        out[key] = entry
    if per_category:
        table = state.replicate_per_category(ones)
        cats = {}
        for k, cid in enumerate(state.category_ids.tolist()):
            interval, se, n, _ = _interval(reps["per_category"][:, k], confidence)  # NaN: no GT left
            cats[cid] = {"point": table[cid], "interval": interval, "se": se, "n_replicates": n}
        out["per_category"] = cats
    return out


def _run(
    state: BootstrapState,
    other: BootstrapState | None,
    n_replicates: int,
    seed: int,
    groups,
    per_category: bool,
) -> list[dict[str, np.ndarray]]:
    """Replicates of one state, or of two with the same weight rows."""
    states = [state] if other is None else [state, other]
    chunk = 256
    parts: list[list[dict]] = [[] for _ in states]
    for W in _weight_chunks(len(state.image_ids), n_replicates, seed=seed, chunk=chunk):
        for s, part in zip(states, parts, strict=True):
            part.append(s.replicates(W, groups=groups, per_category=per_category))
    return [{k: np.concatenate([p[k] for p in part]) for k in part[0]} for part in parts]


def paired_bootstrap(
    eval_a: BootstrapState | StreamingEvaluator,
    eval_b: BootstrapState | StreamingEvaluator,
    *,
    n_replicates: int = 1000,
    seed: int = 0,
    groups: Mapping[str, Sequence[int]] | None = None,
    confidence: float = 0.95,
    return_replicates: bool = False,
) -> dict[str, dict]:
    """ΔAP = B − A per key, with the SAME image resamples applied to both evaluations.

    Pairing removes the image-set variation the two share (the two models see the same images), which is
    why a paired interval is much narrower than the difference of two separate ones. Both evaluations must
    cover the identical image set (ValueError otherwise). Returns ``{key: {"delta", "interval": [lo, hi],
    "se", "bias", "share_le_0", "n_replicates", "seed", "confidence", "point_a", "point_b"}}`` for the keys both
    report (and ``AP[name]`` per group); ``share_le_0`` is the share of replicates where B does not beat A.
    """
    _check_args(n_replicates, confidence)
    a, b = _state(eval_a), _state(eval_b)
    if not np.array_equal(a.image_ids, b.image_ids):
        raise ValueError(
            f"paired bootstrap needs the same image set: A has {len(a.image_ids)} images, B {len(b.image_ids)}, "
            f"{len(np.setxor1d(a.image_ids, b.image_ids))} ids in one but not the other"
        )
    ones = np.ones(len(a.image_ids), np.int32)
    pa = {**a.point, **a.replicate(ones, groups=groups)} if groups else dict(a.point)
    pb = {**b.point, **b.replicate(ones, groups=groups)} if groups else dict(b.point)
    ra, rb = _run(a, b, n_replicates, seed, groups, False)
    out: dict[str, dict] = {}
    for key in (k for k in pa if k in pb):
        va, vb = ra[key], rb[key]
        ok = (va > -1) & (vb > -1)
        delta = vb[ok] - va[ok]
        defined = pa[key] > -1 and pb[key] > -1 and len(delta) > 0
        interval, se, n, mean = _interval(delta, confidence) if defined else (None, None, 0, None)
        entry = {
            "delta": pb[key] - pa[key] if defined else None,
            "interval": interval,
            "se": se,
            "bias": None if mean is None else mean - (pb[key] - pa[key]),
            "share_le_0": float(np.mean(delta <= 0)) if defined else None,
            "n_replicates": n,
            "seed": seed,
            "confidence": confidence,
            "point_a": pa[key],
            "point_b": pb[key],
        }
        if return_replicates:
            entry["replicates"] = delta
        out[key] = entry
    return out
