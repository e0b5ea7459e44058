"""Score a standard COCO/LVIS results file (a JSON list of ``{image_id, category_id, bbox, score}``).

The file is parsed with orjson and turned into columns once; from there it is the same streaming
evaluator the model-side code uses, so file and array paths cannot disagree.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from detclip_bench.errors import DataError
from detclip_bench.io import read_json
from detclip_bench.metrics.coco_ap import CocoEvaluator
from detclip_bench.metrics.lvis_ap import LvisEvaluator
from detclip_bench.metrics.results import EvalResult
from detclip_bench.metrics.streaming import StreamingEvaluator

__all__ = ["CLI_PROTOCOLS", "make_evaluator", "read_results", "score_files"]

CLI_PROTOCOLS = ("coco", "lvis", "lvis-fixed")
_INT = {int}  # JSON integers only (not true/false, not 1.0, not "1")
_NUMBER = {int, float}


def make_evaluator(gt, protocol: str, *, topk: int | None = None, max_dets: int | None = None) -> StreamingEvaluator:
    """``coco`` (max_dets default: no per-image cap, i.e. pycocotools on the file as is), ``lvis`` (standard,
    max_dets default 300) or ``lvis-fixed`` (topk default 10000)."""
    if protocol == "coco":
        return CocoEvaluator(gt, max_dets_per_image=max_dets)
    if protocol in ("lvis", "lvis-standard"):
        return LvisEvaluator(gt, protocol="standard", max_dets_per_image=300 if max_dets is None else max_dets)
    if protocol == "lvis-fixed":
        if max_dets is not None:
            raise ValueError("lvis-fixed has no per-image cap (Dave et al. 2021); use --topk")
        return LvisEvaluator(gt, protocol="fixed", topk_per_category=10000 if topk is None else topk)
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {CLI_PROTOCOLS}")


def read_results(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image_ids, boxes_xyxy, scores, category_ids) from a results JSON list, in file order."""
    records = read_json(path)
    if not isinstance(records, list):
        raise DataError(str(path), "-", "a results file must be a JSON list of detections")
    if not records:
        raise DataError(str(path), "-", "empty results list: nothing to score (pycocotools/lvis-api crash on it too)")
    try:
        # numpy would silently coerce "1", 1.5 or true into an id or a score: check the JSON types first.
        for key, allowed in (("image_id", _INT), ("category_id", _INT), ("score", _NUMBER)):
            if not {type(r[key]) for r in records} <= allowed:
                raise TypeError(key)
        image_ids = np.fromiter((r["image_id"] for r in records), np.int64, len(records))
        cats = np.fromiter((r["category_id"] for r in records), np.int64, len(records))
        scores = np.fromiter((r["score"] for r in records), np.float64, len(records))
        xywh = np.array([r["bbox"] for r in records])
    except (KeyError, TypeError, ValueError) as exc:
        raise _first_bad_record(path, records) from exc
    if xywh.ndim != 2 or xywh.shape[1] != 4 or xywh.dtype.kind not in "iuf":
        raise _first_bad_record(path, records)
    xywh = xywh.astype(np.float64, copy=False)
    if (xywh[:, 2:] < 0).any():
        j = int(np.flatnonzero((xywh[:, 2:] < 0).any(1))[0])
        raise DataError(str(path), j, f"negative box width/height in bbox {records[j]['bbox']}")
    xywh[:, 2:] += xywh[:, :2]
    return image_ids, xywh, scores, cats


def _first_bad_record(path, records: list) -> DataError:
    for j, r in enumerate(records):
        ok = isinstance(r, dict) and all(k in r for k in ("image_id", "category_id", "bbox", "score"))
        if ok:
            box = r["bbox"]
            ok = (isinstance(box, list) and len(box) == 4 and all(type(v) in _NUMBER for v in box)
                  and type(r["score"]) in _NUMBER and type(r["image_id"]) in _INT and type(r["category_id"]) in _INT)
        if not ok:
            return DataError(str(path), j, f"not a bbox detection {{image_id:int, category_id:int, bbox:[x,y,w,h], "
                                           f"score:number}}: {str(r)[:200]}")
    return DataError(str(path), "-", "malformed results list")


def score_files(gt_path: str | os.PathLike, pred_path: str | os.PathLike, protocol: str, **kw) -> EvalResult:
    """Score ``pred_path`` against ``gt_path``; ``kw``: ``topk``, ``max_dets`` (see :func:`make_evaluator`)."""
    evaluator = make_evaluator(gt_path, protocol, **kw)
    evaluator.source = str(Path(pred_path))
    image_ids, boxes, scores, cats = read_results(pred_path)
    evaluator.update(image_ids, boxes, scores, cats)
    return evaluator.compute()
