"""The reference tools, run the way upstream runs them (lvis-api, the large-vocab-devil recipe, pycocotools)."""

from __future__ import annotations

import contextlib
import copy
import io
import logging

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detclip_bench.compat import import_lvis

COCO_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def _lvis_gt(gt: dict):
    lvis = import_lvis()
    obj = lvis.LVIS.__new__(lvis.LVIS)
    obj.logger = logging.getLogger("lvis-oracle")
    obj.dataset = copy.deepcopy(gt)
    obj._create_index()
    return obj


def _lvis_run(gt: dict, results: list[dict], max_dets: int):
    lvis = import_lvis()
    lgt = _lvis_gt(gt)
    res = lvis.LVISResults(lgt, copy.deepcopy(results), max_dets=max_dets)
    ev = lvis.LVISEval(lgt, res, "bbox")
    ev.params.max_dets = max_dets
    ev.run()
    return ev


def per_category(ev, precision: np.ndarray, cat_ids) -> dict[int, float]:
    out = {}
    for k, c in enumerate(cat_ids):
        s = precision[:, :, k]
        out[int(c)] = float(np.mean(s[s > -1])) if (s > -1).any() else float("nan")
    return out


def lvis_standard(gt: dict, results: list[dict]) -> tuple[dict, dict]:
    ev = _lvis_run(gt, results, 300)
    return dict(ev.results), per_category(ev, ev.eval["precision"][:, :, :, 0], ev.params.cat_ids)


def devil_fixed_ap(gt: dict, results: list[dict], k: int) -> tuple[dict, dict]:
    """large-vocab-devil scripts/evaluate_ap_fixed.py: per-class stable sorted()[:K], then max_dets=-1."""
    by_cat: dict[int, list[dict]] = {}
    for r in results:
        by_cat.setdefault(r["category_id"], []).append(r)
    kept = []
    for dets in by_cat.values():
        kept.extend(sorted(dets, key=lambda d: d["score"], reverse=True)[:k])
    ev = _lvis_run(gt, kept, -1)
    return dict(ev.results), per_category(ev, ev.eval["precision"][:, :, :, 0], ev.params.cat_ids)


def limit_per_image(results: list[dict], n: int) -> list[dict]:
    """LVISResults.limit_dets_per_image / GLIP post-processing, as plain Python."""
    by_img: dict[int, list[dict]] = {}
    for r in results:
        by_img.setdefault(r["image_id"], []).append(r)
    out = []
    for dets in by_img.values():
        out.extend(sorted(dets, key=lambda d: d["score"], reverse=True)[:n])
    return out


def pycocotools_bbox(gt: dict, results: list[dict]) -> tuple[dict, dict]:
    cgt = COCO()
    cgt.dataset = copy.deepcopy(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        cgt.createIndex()
        dt = cgt.loadRes(copy.deepcopy(results))
        ev = COCOeval(cgt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(COCO_KEYS, map(float, ev.stats), strict=True)), per_category(
        ev, ev.eval["precision"][:, :, :, 0, -1], ev.params.catIds
    )


def assert_same(got: dict, ref: dict, tol: float = 1e-6) -> None:
    assert set(ref) <= set(got), f"missing keys {set(ref) - set(got)}"
    bad = {k: (got[k], float(ref[k])) for k in ref if abs(got[k] - float(ref[k])) > tol}
    assert not bad, f"differs from the oracle: {bad}"


def assert_same_per_category(got_rows, ref: dict, tol: float = 1e-6) -> None:
    got = {row.id: row.ap for row in got_rows}
    for cid, v in ref.items():
        if np.isnan(v):
            assert np.isnan(got[cid]), cid
        else:
            assert abs(got[cid] - v) <= tol, (cid, got[cid], v)
