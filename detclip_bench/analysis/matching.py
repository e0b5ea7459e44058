"""Per-image TP/FP/FN at one IoU threshold, with COCO greedy matching and LVIS federated rules.

Why our own matcher: FiftyOne's ``evaluate_detections`` is not federated (it counts a detection
on a category nobody checked in that image as a false positive), and the AP evaluator returns
numbers, not per-box verdicts. The rules mirror the oracles so every tag agrees with the AP:

* COCO greedy matching (pycocotools ``evaluateImg``): per category, detections in descending
  score (stable), each takes the unmatched non-crowd GT of its category with the highest IoU
  >= threshold; failing that a crowd GT (IoU = intersection / detection area), which makes the
  detection ``ignored``. IoUs come from ``pycocotools.mask.iou`` itself.
* LVIS federated rules (lvis-api): a detection whose category is neither in the image's
  positive set (categories with GT there) nor in ``neg_category_ids`` is ``ignored``
  (unverified); an unmatched detection of a ``not_exhaustive_category_ids`` category is
  ``ignored`` (the missing box may simply be unannotated).
* Every other unmatched detection is a false positive, explained by the first error that fits:
  ``duplicate`` (IoU >= threshold with a same-category GT already taken by a higher score),
  ``localization`` (``loc_min_iou`` <= IoU < threshold with a same-category GT),
  ``confusion`` (IoU >= threshold with a GT of another category) or ``background``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["DetStatus", "ImageGT", "ImageMatch", "match_image"]

DetStatus = str  # "tp" | "fp" | "ignored" (detections); "tp" | "fn" | "ignored" (GT)


@dataclass
class ImageGT:
    """One image's ground truth as the evaluator sees it."""

    boxes: np.ndarray  # (N, 4) xyxy pixels
    category_ids: np.ndarray  # (N,) GT json ids
    crowd: np.ndarray | None = None  # (N,) bool; COCO iscrowd
    neg_category_ids: frozenset[int] = frozenset()
    not_exhaustive_category_ids: frozenset[int] = frozenset()
    federated: bool = False  # LVIS rules on/off

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        self.category_ids = np.asarray(self.category_ids, np.int64).reshape(-1)
        self.crowd = (
            np.zeros(len(self.category_ids), bool) if self.crowd is None else np.asarray(self.crowd, bool).reshape(-1)
        )


@dataclass
class ImageMatch:
    """Verdicts for every detection and GT box of one image (indices follow the inputs)."""

    det_status: np.ndarray  # (D,) "tp" | "fp" | "ignored"
    det_reason: np.ndarray  # (D,) "" for tp; fp: duplicate/localization/confusion/background;
    #                              ignored: unverified/not_exhaustive/crowd
    det_gt: np.ndarray  # (D,) matched GT index or -1
    det_iou: np.ndarray  # (D,) best IoU with a non-crowd GT of the same category (0 if none)
    det_confused_with: np.ndarray  # (D,) category id of the overlapped other-class GT for confusions, else -1
    gt_status: np.ndarray  # (N,) "tp" | "fn" | "ignored" (crowd)
    gt_det: np.ndarray  # (N,) index of the matching detection or -1
    counts: dict[str, int] = field(default_factory=dict)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    out = np.array(boxes, np.float64).reshape(-1, 4)
    out[:, 2:] -= out[:, :2]
    return out


def _ious(det: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if not len(det) or not len(gt):
        return np.zeros((len(det), len(gt)))
    return np.asarray(mask_utils.iou(_xywh(det), _xywh(gt), crowd.astype(np.uint8).tolist()), np.float64)


def match_image(
    gt: ImageGT, boxes, scores, category_ids, *, iou_threshold: float = 0.5, loc_min_iou: float = 0.1
) -> ImageMatch:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    cats = np.asarray(category_ids, np.int64).reshape(-1)
    n_det, n_gt = len(scores), len(gt.category_ids)
    ious = _ious(boxes, gt.boxes, gt.crowd)
    same = cats[:, None] == gt.category_ids[None, :]
    solid = ~gt.crowd[None, :]

    det_status = np.full(n_det, "fp", dtype=object)
    det_reason = np.full(n_det, "", dtype=object)
    det_gt = np.full(n_det, -1, np.int64)
    det_confused = np.full(n_det, -1, np.int64)
    gt_det = np.full(n_gt, -1, np.int64)
    det_iou = np.where(same & solid, ious, 0.0).max(axis=1) if n_gt else np.zeros(n_det)
    thr = min(iou_threshold, 1 - 1e-10)  # pycocotools' guard against IoU == 1 rounding

    for d in np.argsort(-scores, kind="mergesort").tolist():
        cand = same[d] & solid[0] & (gt_det < 0) & (ious[d] >= thr)
        if cand.any():
            g = int(np.flatnonzero(cand)[np.argmax(ious[d, cand])])
            gt_det[g], det_gt[d], det_status[d] = d, g, "tp"
            continue
        if (same[d] & gt.crowd & (ious[d] >= thr)).any():
            det_status[d], det_reason[d] = "ignored", "crowd"
            continue
        c = int(cats[d])
        if gt.federated and c not in set(gt.category_ids.tolist()) and c not in gt.neg_category_ids:
            det_status[d], det_reason[d] = "ignored", "unverified"
        elif gt.federated and c in gt.not_exhaustive_category_ids:
            det_status[d], det_reason[d] = "ignored", "not_exhaustive"
        else:
            det_reason[d] = _fp_reason(d, ious, same, solid[0], thr, loc_min_iou)
            if det_reason[d] == "confusion":
                other = np.where(~same[d] & solid[0], ious[d], -1.0)
                det_confused[d] = int(gt.category_ids[int(np.argmax(other))])

    gt_status = np.where(gt_det >= 0, "tp", "fn").astype(object)
    gt_status[gt.crowd] = "ignored"
    counts = {
        "tp": int((det_status == "tp").sum()),
        "fp": int((det_status == "fp").sum()),
        "fn": int((gt_status == "fn").sum()),
        "ignored": int((det_status == "ignored").sum()),
    }
    return ImageMatch(det_status, det_reason, det_gt, det_iou, det_confused, gt_status, gt_det, counts)


def _fp_reason(d: int, ious: np.ndarray, same: np.ndarray, solid: np.ndarray, thr: float, loc_min: float) -> str:
    if not ious.shape[1]:
        return "background"
    same_iou = np.where(same[d] & solid, ious[d], 0.0).max()
    if same_iou >= thr:
        return "duplicate"
    if same_iou >= loc_min:
        return "localization"
    if np.where(~same[d] & solid, ious[d], 0.0).max() >= thr:
        return "confusion"
    return "background"
