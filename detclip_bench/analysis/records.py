"""Join one member's ground truth (the project's loader) with its cached predictions, image by image.

Both the FiftyOne dataset and the static report are built from these records, so the App and the
HTML page show the same verdicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from detclip_bench.analysis.matching import ImageGT, ImageMatch, match_image
from detclip_bench.analysis.run_dir import MemberRun, group_by_image
from detclip_bench.errors import DataError

__all__ = ["ImageRecord", "category_names", "iter_records"]


@dataclass
class ImageRecord:
    member: str
    image_id: int
    path: str
    width: int
    height: int
    gt: ImageGT
    det_boxes: np.ndarray  # (D, 4) xyxy pixels
    det_scores: np.ndarray
    det_category_ids: np.ndarray
    match: ImageMatch


def category_names(member: MemberRun) -> dict[int, str]:
    """GT category id -> the name shown to people (the loader's cleaned prompt name)."""
    return {int(c.category_id): c.name for c in member.target.open().vocabulary()}


def iter_records(member: MemberRun, *, iou_threshold: float = 0.5, progress: bool = True) -> Iterator[ImageRecord]:
    dataset = member.target.open()
    rows_by_image = group_by_image(member.predictions)
    known = {int(dataset.record_id(i)) for i in range(len(dataset))}
    unknown = sorted(set(rows_by_image) - known)
    if unknown:
        raise DataError(
            str(member.target.annotations),
            f"image {unknown[0]}",
            f"{len(unknown)} image ids in the cached predictions are not in this GT (wrong data root?)",
        )
    pred = member.predictions
    empty = np.zeros(0, np.int64)
    for i in tqdm(range(len(dataset)), desc=f"match {member.member}", disable=not progress, unit="img"):
        sample = dataset[i]
        image_id = int(sample.record_id)
        cat_ids = np.array([sample.concepts[k].category_id for k in sample.labels.tolist()], np.int64)
        meta = sample.meta
        gt = ImageGT(
            sample.boxes,
            cat_ids,
            crowd=np.asarray(meta.get("iscrowd", np.zeros(len(cat_ids))), bool),
            neg_category_ids=frozenset(int(c) for c in meta.get("neg_category_ids", ())),
            not_exhaustive_category_ids=frozenset(int(c) for c in meta.get("not_exhaustive_category_ids", ())),
            federated=member.lvis,
        )
        rows = rows_by_image.get(image_id, empty)
        boxes, scores, cats = pred.boxes[rows], pred.scores[rows], pred.category_ids[rows]
        match = match_image(gt, boxes, scores, cats, iou_threshold=iou_threshold)
        yield ImageRecord(
            member.member,
            image_id,
            sample.image.describe(),
            sample.width,
            sample.height,
            gt,
            np.asarray(boxes, np.float64),
            np.asarray(scores, np.float64),
            np.asarray(cats, np.int64),
            match,
        )
