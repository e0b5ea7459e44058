"""Ground truth for the evaluators: loaded once, validated, indexed, handed to the engine.

Validation happens here (not in the engine) so that bad GT is a ``DataError`` naming the file and
record instead of an assertion from deep inside pycocotools / lvis-api / hotcoco.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detclip_bench.errors import DataError
from detclip_bench.io import read_json

__all__ = ["GroundTruth"]


@dataclass
class GroundTruth:
    """A validated COCO or LVIS GT with the lookups the evaluators need."""

    dataset: dict
    source: str
    lvis: bool
    image_ids: np.ndarray  # sorted, as the oracles iterate them
    category_ids: np.ndarray  # sorted
    category_names: dict[int, str]
    frequency: dict[int, str]  # LVIS r/c/f group; empty for COCO
    num_gt: dict[int, int]  # annotations per category (crowd/ignored included)
    _engine_gt: Any = field(default=None, repr=False)

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
        _unique_ids(source, "annotations", dataset["annotations"])
        image_set, cat_set = set(image_ids.tolist()), set(cat_ids.tolist())
        num_gt = dict.fromkeys(cat_ids.tolist(), 0)
        for k, ann in enumerate(dataset["annotations"]):
            _check_annotation(source, k, ann, image_set, cat_set)
            num_gt[ann["category_id"]] += 1
        frequency: dict[int, str] = {}
        if lvis:
            for k, cat in enumerate(dataset["categories"]):
                if cat.get("frequency") not in ("r", "c", "f"):
                    raise DataError(source, f"categories[{k}] (id {cat['id']})", "LVIS category needs frequency r/c/f")
                frequency[cat["id"]] = cat["frequency"]
            for k, img in enumerate(dataset["images"]):
                for key in ("neg_category_ids", "not_exhaustive_category_ids"):
                    ids = img.get(key)
                    if not isinstance(ids, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in ids):
                        raise DataError(source, f"images[{k}] (id {img['id']})",
                                        f"LVIS image needs a {key} list of integer category ids, got {str(ids)[:80]}")
        names = {c["id"]: str(c.get("name", c["id"])) for c in dataset["categories"]}
        return cls(dataset, source, lvis, np.sort(image_ids), np.sort(cat_ids), names, frequency, num_gt)

    @property
    def engine_gt(self):
        """The GT as a hotcoco ``COCO`` (built lazily, once)."""
        if self._engine_gt is None:
            import hotcoco

            data = self.dataset
            if self.lvis and any("iscrowd" in a for a in data["annotations"]):
                # lvis-api ignores iscrowd entirely; do not let the engine treat boxes as crowd.
                anns = [{k: v for k, v in a.items() if k != "iscrowd"} for a in data["annotations"]]
                data = {**data, "annotations": anns}
            self._engine_gt = hotcoco.COCO(data)
        return self._engine_gt


def _unique_ids(source: str, key: str, records: list) -> np.ndarray:
    ids = []
    seen: set[int] = set()
    for k, rec in enumerate(records):
        rid = rec.get("id") if isinstance(rec, dict) else None
        if not isinstance(rid, int) or isinstance(rid, bool):
            raise DataError(source, f"{key}[{k}]", "needs an integer 'id'")
        if rid in seen:
            raise DataError(source, f"{key}[{k}] (id {rid})", f"duplicate {key} id {rid}")
        seen.add(rid)
        ids.append(rid)
    return np.asarray(ids, dtype=np.int64)


def _check_annotation(source: str, k: int, ann: dict, images: set[int], cats: set[int]) -> None:
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
        raise DataError(source, where, f"'area' must be a finite number >= 0 (the oracles read it), got {ann.get('area')!r}")


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
