"""Ground truth for the evaluators: loaded once, validated, indexed, handed to the engine.

Validation happens here (not in the engine) so that bad GT is a ``DataError`` naming the file and
record instead of an assertion from deep inside pycocotools / lvis-api / hotcoco.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import Any

import numpy as np

from detclip_bench.errors import DataError
from detclip_bench.io import read_json
from detclip_bench.metrics.dense import dense_table_fits

__all__ = ["GroundTruth"]


@dataclass
class GroundTruth:
    """A validated COCO or LVIS GT with the lookups the evaluators need.

    The parsed JSON is not kept: once validated, the annotations live on as columns inside the engine's
    GT, so a large GT (LVIS val's polygons) neither stays resident as Python objects nor slows every
    garbage-collector pass of a long evaluation loop."""

    source: str
    lvis: bool
    image_ids: np.ndarray  # sorted, as the oracles iterate them
    category_ids: np.ndarray  # sorted
    category_names: dict[int, str]
    frequency: dict[int, str]  # LVIS r/c/f group; empty for COCO
    num_gt: dict[int, int]  # annotations per category (crowd/ignored included)
    num_annotations: int
    engine_gt: Any = field(repr=False)  # hotcoco COCO over the bbox columns
    verified: VerifiedPairs | None = field(default=None, repr=False)  # LVIS only

    def federated_mask(self, image_ids: np.ndarray, category_ids: np.ndarray) -> np.ndarray:
        """Which detections lvis-api evaluates at all: those whose category is positive (has GT) or in
        ``neg_category_ids`` on their image. lvis-api drops every other one in ``LVISEval._prepare``;
        dropping them before the engine gives the same numbers without building them first."""
        if self.verified is None:
            raise ValueError("federated_mask is for LVIS ground truth")
        return self.verified.contains(image_ids, category_ids)

    @classmethod
    def cached(cls, path: str | os.PathLike, *, lvis: bool) -> GroundTruth:
        """:meth:`load` once per file version: fine-tuning scores the same val file every epoch, and a suite
        scores one file under several protocols. A file rewritten since (size or mtime) is loaded again."""
        try:
            stat = Path(path).stat()
        except OSError:
            return cls.load(path, lvis=lvis)  # the DataError naming the file comes from there
        return _load_cached(str(Path(path).resolve()), lvis, stat.st_mtime_ns, stat.st_size)

    @classmethod
    def load(cls, gt: dict | str | os.PathLike, *, lvis: bool) -> GroundTruth:
        if isinstance(gt, dict):
            source, dataset = "<gt dict>", gt
        else:
            source, dataset = str(gt), read_json(gt)
        if not isinstance(dataset, dict):
            raise DataError(source, "-", "GT must be a JSON object with images/annotations/categories")
        for key in ("images", "annotations", "categories"):
            if not isinstance(dataset.get(key), list):
                raise DataError(source, key, f"missing or not a list: {key!r}")
        image_ids = _unique_ids(source, "images", dataset["images"])
        cat_ids = _unique_ids(source, "categories", dataset["categories"])
        ann_ids = _unique_ids(source, "annotations", dataset["annotations"])
        columns = _annotation_columns(source, dataset["annotations"], image_ids, cat_ids, crowd=not lvis)
        sorted_images, sorted_cats = np.sort(image_ids), np.sort(cat_ids)
        counts = np.bincount(np.searchsorted(sorted_cats, columns["category_ids"]), minlength=len(sorted_cats))
        num_gt = dict(zip(sorted_cats.tolist(), counts.tolist(), strict=True))
        frequency: dict[int, str] = {}
        if lvis:
            for k, cat in enumerate(dataset["categories"]):
                if cat.get("frequency") not in ("r", "c", "f"):
                    raise DataError(source, f"categories[{k}] (id {cat['id']})", "LVIS category needs frequency r/c/f")
                frequency[cat["id"]] = cat["frequency"]
            for key in ("neg_category_ids", "not_exhaustive_category_ids"):
                _check_federated_lists(source, dataset["images"], key)
        names = {c["id"]: str(c.get("name", c["id"])) for c in dataset["categories"]}
        import hotcoco

        # lvis-api ignores iscrowd entirely, so LVIS boxes reach the engine without it.
        engine = hotcoco.COCO.from_arrays(dataset["images"], dataset["categories"], ids=ann_ids, **columns)
        verified = None
        if lvis:
            images = dataset["images"]
            counts = np.fromiter((len(img["neg_category_ids"]) for img in images), np.int64, len(images))
            neg_images = np.repeat(image_ids, counts)  # image_ids is in file order here
            neg_cats = np.fromiter(
                chain.from_iterable(img["neg_category_ids"] for img in images), np.int64, int(counts.sum())
            )
            verified = VerifiedPairs(
                sorted_images,
                sorted_cats,
                np.r_[columns["image_ids"], neg_images],
                np.r_[columns["category_ids"], neg_cats],
            )
        return cls(source, lvis, sorted_images, sorted_cats, names, frequency, num_gt, len(ann_ids), engine, verified)


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, lvis: bool, mtime_ns: int, size: int) -> GroundTruth:
    return GroundTruth.load(path, lvis=lvis)


class VerifiedPairs:
    """A set of (image id, category id) pairs, looked up for millions of detections at once: a dense
    image x category bit table when that is small (LVIS val: 19,809 x 1,203), sorted pair keys otherwise."""

    _MAX_TABLE = 1 << 28

    def __init__(
        self, image_ids: np.ndarray, category_ids: np.ndarray, pair_images: np.ndarray, pair_categories: np.ndarray
    ) -> None:
        self._image_pos, self._category_pos = _positions(image_ids), _positions(category_ids)
        self._num_categories = n_cat = len(category_ids)
        known = np.isin(pair_categories, category_ids)  # a neg_category_id outside the categories never matches
        img, cat = self._image_pos(pair_images[known]), self._category_pos(pair_categories[known])
        if len(image_ids) * n_cat <= self._MAX_TABLE:
            self.table = np.zeros((len(image_ids), n_cat), bool)
            self.table[img, cat] = True
        else:
            self.table, self.keys = None, np.unique(img * n_cat + cat)

    def contains(self, image_ids: np.ndarray, category_ids: np.ndarray) -> np.ndarray:
        """Per pair (both arrays hold known ids, any numeric dtype): is it in the set."""
        img, cat = self._image_pos(image_ids), self._category_pos(category_ids)
        if self.table is not None:
            return self.table[img, cat]
        return np.isin(img * self._num_categories + cat, self.keys)


def _positions(sorted_ids: np.ndarray):
    """id -> position in ``sorted_ids`` for arrays of known ids: a dense table when ids are small
    (one gather, ~20x faster than a binary search over millions of values), else a binary search."""
    if len(sorted_ids) and dense_table_fits(int(sorted_ids[0]), int(sorted_ids[-1]), len(sorted_ids)):
        table = np.zeros(int(sorted_ids[-1]) + 1, np.int32)
        table[sorted_ids] = np.arange(len(sorted_ids))
        return lambda values: table[np.asarray(values).astype(np.int64)]
    return lambda values: np.searchsorted(sorted_ids, values)


def _unique_ids(source: str, key: str, records: list) -> np.ndarray:
    """The records' integer ids, refusing a missing, non-integer or repeated one (vectorised; the
    record-by-record scan only runs to name the first offender)."""
    try:
        ids = [*map(itemgetter("id"), records)]
        if set(map(type, ids)) <= {int}:
            ids = np.fromiter(ids, np.int64, len(records))
            ordered = np.sort(ids)  # a sort beats np.unique's hashing here by ~10x
            if not (ordered[1:] == ordered[:-1]).any():
                return ids
    except (KeyError, TypeError, OverflowError):
        pass
    seen: set[int] = set()
    for k, rec in enumerate(records):
        rid = rec.get("id") if isinstance(rec, dict) else None
        if not isinstance(rid, int) or isinstance(rid, bool):
            raise DataError(source, f"{key}[{k}]", "needs an integer 'id'")
        if rid in seen:
            raise DataError(source, f"{key}[{k}] (id {rid})", f"duplicate {key} id {rid}")
        seen.add(rid)
    raise DataError(source, key, "ids do not fit in int64")


def _check_federated_lists(source: str, images: list, key: str) -> None:
    """Every LVIS image carries ``key`` as a list of integer category ids (vectorised; scan only on failure)."""
    lists = [*map(methodcaller("get", key), images)]
    if set(map(type, lists)) <= {list} and set(map(type, chain.from_iterable(lists))) <= {int}:
        return
    for k, ids in enumerate(lists):
        if not isinstance(ids, list) or not all(type(c) is int for c in ids):
            raise DataError(
                source,
                f"images[{k}] (id {images[k]['id']})",
                f"LVIS image needs a {key} list of integer category ids, got {str(ids)[:80]}",
            )


def _annotation_columns(
    source: str, anns: list, image_ids: np.ndarray, cat_ids: np.ndarray, *, crowd: bool
) -> dict[str, np.ndarray | None]:
    """The annotations as the engine's columns, after checking every field the oracles read. One vectorised
    pass; on any failure the record-by-record check runs to raise an error naming the first bad record."""
    try:
        # Each field pulled out once (map + itemgetter: ~3x faster than a generator per check on LVIS val).
        image_col, cat_col, area_col, box_col = (
            [*map(itemgetter(key), anns)] for key in ("image_id", "category_id", "area", "bbox")
        )
        crowd_col = [*map(methodcaller("get", "iscrowd", 0), anns)] if crowd else None
        fields_ok = (
            set(map(type, image_col)) <= {int}
            and set(map(type, cat_col)) <= {int}
            and set(map(type, area_col)) <= {int, float}
            and set(map(type, box_col)) <= {list, tuple}
            and set(map(len, box_col)) <= {4}
            and set(map(type, chain.from_iterable(box_col))) <= {int, float}
            and (not crowd or set(crowd_col) <= {0, 1})
        )
        if fields_ok:
            n = len(anns)
            columns = {
                "image_ids": np.fromiter(image_col, np.int64, n),
                "category_ids": np.fromiter(cat_col, np.int64, n),
                "area": np.fromiter(area_col, np.float64, n),
                "boxes": np.fromiter(chain.from_iterable(box_col), np.float64, 4 * n).reshape(n, 4),
                "iscrowd": np.fromiter(crowd_col, np.int64, n) if crowd else None,
            }
            box, area = columns["boxes"], columns["area"]
            if (
                np.isin(columns["image_ids"], image_ids).all()
                and np.isin(columns["category_ids"], cat_ids).all()
                and np.isfinite(box).all()
                and (box[:, 2:] >= 0).all()
                and np.isfinite(area).all()
                and (area >= 0).all()
            ):
                return columns
    except (KeyError, TypeError, OverflowError):
        pass
    image_set, cat_set = set(image_ids.tolist()), set(cat_ids.tolist())
    for k, ann in enumerate(anns):
        _check_annotation(source, k, ann, image_set, cat_set, crowd=crowd)
    raise DataError(source, "annotations", "an annotation field is out of range")


def _check_annotation(source: str, k: int, ann: dict, images: set[int], cats: set[int], *, crowd: bool) -> None:
    where = f"annotations[{k}] (id {ann['id']})"
    if ann.get("image_id") not in images:
        raise DataError(source, where, f"image_id {ann.get('image_id')!r} is not in images")
    if ann.get("category_id") not in cats:
        raise DataError(source, where, f"category_id {ann.get('category_id')!r} is not in categories")
    box = ann.get("bbox")
    if not isinstance(box, list | tuple) or len(box) != 4 or not all(_finite(v) for v in box):
        raise DataError(source, where, f"bbox must be 4 finite numbers [x, y, w, h], got {box!r}")
    if box[2] < 0 or box[3] < 0:
        raise DataError(source, where, f"negative box width/height in bbox {box!r}")
    if not _finite(ann.get("area")) or ann["area"] < 0:
        raise DataError(
            source, where, f"'area' must be a finite number >= 0 (the oracles read it), got {ann.get('area')!r}"
        )
    if crowd and ann.get("iscrowd", 0) not in (0, 1):
        raise DataError(source, where, f"'iscrowd' must be 0 or 1, got {ann.get('iscrowd')!r}")


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
