"""Score a standard COCO/LVIS results file (a JSON list of ``{image_id, category_id, bbox, score}``).

The file is decoded by msgspec into typed records and turned into columns once; from there it is the same streaming
evaluator the model-side code uses, so file and array paths cannot disagree.
"""

from __future__ import annotations

import os
import re
from itertools import chain
from operator import attrgetter
from pathlib import Path

import msgspec
import numpy as np

from detclip_bench.errors import DataError
from detclip_bench.io import gc_paused
from detclip_bench.metrics.coco_ap import CocoEvaluator
from detclip_bench.metrics.lvis_ap import LvisEvaluator
from detclip_bench.metrics.results import EvalResult
from detclip_bench.metrics.streaming import StreamingEvaluator

__all__ = ["CLI_PROTOCOLS", "make_evaluator", "read_results", "score_files"]

CLI_PROTOCOLS = ("coco", "lvis", "lvis-fixed")


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


class _Detection(msgspec.Struct, gc=False):
    """One results-file record. msgspec checks the JSON types while decoding: 1.5, "1" or true is not an id,
    true is not a score, and a bbox has exactly 4 numbers. Other keys (segmentation, id) are ignored."""

    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    score: float


_RECORD_INDEX = re.compile(r"\$\[(\d+)\]")


def read_results(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image_ids, boxes_xyxy, scores, category_ids) from a results JSON list, in file order.

    Decoded by msgspec straight into typed records (about 4x faster and 2x leaner than dicts from orjson on a
    5.8M-detection file), then into columns."""
    raw = Path(path).read_bytes()
    try:
        with gc_paused():  # millions of bbox tuples would otherwise trigger collections that find nothing
            records = msgspec.json.decode(raw, type=list[_Detection])
    except msgspec.ValidationError as exc:
        found = _RECORD_INDEX.match(str(exc).rsplit(" - at `", 1)[-1])
        if found is None:
            raise DataError(str(path), "-", f"a results file must be a JSON list of detections ({exc})") from exc
        j = int(found.group(1))
        text = bytes(msgspec.json.decode(raw, type=list[msgspec.Raw])[j]).decode(errors="replace")[:200]
        why = f"{exc} (overflows to infinity)" if "out of range" in str(exc) else str(exc)
        raise DataError(str(path), j, "not a bbox detection {image_id:int, category_id:int, bbox:[x,y,w,h], "
                        f"score:number}}: {why}; the record: {text}") from exc
    except msgspec.DecodeError as exc:
        raise DataError(str(path), "-", f"malformed JSON: {exc} (NaN or Infinity, as json.dump writes them, is not "
                        "JSON either)") from exc
    if not records:
        raise DataError(str(path), "-", "empty results list: nothing to score (pycocotools/lvis-api crash on it too)")
    n = len(records)
    image_ids = np.fromiter(map(attrgetter("image_id"), records), np.int64, n)
    cats = np.fromiter(map(attrgetter("category_id"), records), np.int64, n)
    scores = np.fromiter(map(attrgetter("score"), records), np.float64, n)
    xywh = np.fromiter(chain.from_iterable(map(attrgetter("bbox"), records)), np.float64, 4 * n).reshape(n, 4)
    del records
    negative = (xywh[:, 2:] < 0).any(1)
    if negative.any():
        j = int(np.flatnonzero(negative)[0])
        raise DataError(str(path), j, f"negative box width/height in bbox {xywh[j].tolist()}")
    xywh[:, 2:] += xywh[:, :2]
    return image_ids, xywh, scores, cats


def score_files(gt_path: str | os.PathLike, pred_path: str | os.PathLike, protocol: str, **kw) -> EvalResult:
    """Score ``pred_path`` against ``gt_path``; ``kw``: ``topk``, ``max_dets`` (see :func:`make_evaluator`)."""
    evaluator = make_evaluator(gt_path, protocol, **kw)
    evaluator.source = str(Path(pred_path))
    image_ids, boxes, scores, cats = read_results(pred_path)
    evaluator.update(image_ids, boxes, scores, cats)
    return evaluator.compute()
