"""The evaluate/accumulate engine: hotcoco (Rust), fed one float64 array, never JSON.

The array is the streaming top-K's own buffer (rows ``image_id, x, y, w, h, score, category_id``),
handed over without a copy; for LVIS only the rows on verified (image, category) pairs, since
lvis-api ignores the rest.

Why hotcoco: measured in ``benchmarks/eval_bench.py`` it is the fastest of lvis-api, pycocotools,
faster-coco-eval and hotcoco on the same input, and ``tests/metrics`` check it against lvis-api and
pycocotools to 1e-6 on every key. Its two caveats are neutralised before it sees the data:
per-(image, category) ``maxDets`` truncation (we pre-cap ourselves and pass an unbounded cap for
LVIS), and crowd handling for LVIS GT (never passed: :class:`GroundTruth` builds the engine's GT
from columns without ``iscrowd`` for LVIS).

The summary (which precision cells are averaged into which key) is computed here from the engine's
``precision``/``recall`` arrays with the oracles' own rule: the mean over entries > -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detclip_bench.metrics.gt import GroundTruth

__all__ = ["Accumulated", "accumulate", "coco_summary", "evaluated", "lvis_summary", "per_category_ap"]

_UNBOUNDED = 2**31 - 1


@dataclass
class Accumulated:
    precision: np.ndarray  # (T=10, R=101, K, A=4, M)
    recall: np.ndarray  # (T, K, A, M)
    category_ids: np.ndarray  # K, sorted


def evaluated(gt: GroundTruth, arr: np.ndarray, *, max_dets: list[int] | None, category_ids: list[int] | None = None):
    """The engine after ``evaluate()``: every (image, category) matched, nothing accumulated yet.

    ``category_ids`` restricts matching to those categories (each (image, category) pair is matched on its
    own, so a subset gives the same matches); :mod:`~detclip_bench.metrics.bootstrap` reads the per-detection
    matches category batch by category batch this way, so the engine's per-pair records never all exist at once.
    """
    import hotcoco

    if gt.lvis:
        dt = hotcoco.LVISResults(gt.engine_gt, arr, -1)
        ev = hotcoco.LVISEval(gt.engine_gt, dt, "bbox")
    else:
        dt = gt.engine_gt.load_res(arr)
        ev = hotcoco.COCOeval(gt.engine_gt, dt, "bbox")
    ev.params.max_dets = list(max_dets) if max_dets else [_UNBOUNDED]
    if category_ids is not None:
        ev.params.cat_ids = list(category_ids)
    ev.evaluate()
    return ev


def accumulate(gt: GroundTruth, arr: np.ndarray, *, max_dets: list[int] | None) -> Accumulated:
    """Run evaluate + accumulate on detection rows in the engine layout (see ``topk``). ``max_dets=None``: no cap."""
    ev = evaluated(gt, arr, max_dets=max_dets)
    ev.accumulate()
    out = ev.eval
    return Accumulated(np.asarray(out["precision"]), np.asarray(out["recall"]), np.asarray(ev.params.cat_ids))


def _mean_valid(s: np.ndarray) -> float:
    valid = s[s > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def lvis_summary(acc: Accumulated, gt: GroundTruth, *, ar_label: int) -> dict[str, float]:
    """lvis-api ``LVISEval.summarize`` keys and rules (AR label = ``params.max_dets``)."""
    p, r = acc.precision[..., -1], acc.recall[..., -1]
    out = {"AP": _mean_valid(p[:, :, :, 0]), "AP50": _mean_valid(p[0, :, :, 0]), "AP75": _mean_valid(p[5, :, :, 0])}
    for short, a in zip("sml", range(1, 4), strict=True):
        out[f"AP{short}"] = _mean_valid(p[:, :, :, a])
    freq = np.array([gt.frequency[int(c)] for c in acc.category_ids])
    for group in "rcf":
        out[f"AP{group}"] = _mean_valid(p[:, :, freq == group, 0])
    out[f"AR@{ar_label}"] = _mean_valid(r[:, :, 0])
    for short, a in zip("sml", range(1, 4), strict=True):
        out[f"AR{short}@{ar_label}"] = _mean_valid(r[:, :, a])
    return out


def coco_summary(acc: Accumulated, max_dets: list[int]) -> dict[str, float]:
    """pycocotools ``COCOeval.summarize`` (its ``stats`` in order), named as mmdetection/hotcoco name them."""
    p, r = acc.precision, acc.recall
    last = len(max_dets) - 1
    out = {
        "AP": _mean_valid(p[:, :, :, 0, last]),
        "AP50": _mean_valid(p[0, :, :, 0, last]),
        "AP75": _mean_valid(p[5, :, :, 0, last]),
    }
    for short, a in zip("sml", range(1, 4), strict=True):
        out[f"AP{short}"] = _mean_valid(p[:, :, :, a, last])
    for m, md in enumerate(max_dets):
        out[f"AR{md}"] = _mean_valid(r[:, :, 0, m])
    for short, a in zip("sml", range(1, 4), strict=True):
        out[f"AR{short}"] = _mean_valid(r[:, :, a, last])
    return out


def per_category_ap(acc: Accumulated) -> dict[int, float]:
    """AP@[.5:.95] per category (all areas, largest cap); NaN where the category has no usable GT."""
    p = acc.precision[:, :, :, 0, -1]
    out = {}
    for k, cid in enumerate(acc.category_ids.tolist()):
        v = _mean_valid(p[:, :, k])
        out[int(cid)] = float("nan") if v == -1.0 else v
    return out
