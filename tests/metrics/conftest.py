import numpy as np
import pytest

from detclip_bench.metrics.synthetic import make_coco_like, make_detections, make_lvis_like


def feed_by_image(evaluator, dets) -> None:
    """Stream detections image by image, in pool order (what a model loop does)."""
    ids = dets.image_ids
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(ids)], strict=True):
        evaluator.update(int(ids[a]), dets.boxes_xyxy[a:b], dets.scores[a:b], dets.category_ids[a:b])


@pytest.fixture(scope="session")
def lvis_case():
    gt = make_lvis_like(120, 60, gt_per_image=8, seed=11)
    # One category gets no GT at all; detections still land on it.
    gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] != 7]
    dets = make_detections(gt, 360, seed=12)  # > 300 per image: the standard cap bites
    return gt, dets


@pytest.fixture(scope="session")
def coco_case():
    gt = make_coco_like(80, 3, gt_per_image=5, seed=21)
    dets = make_detections(gt, 420, seed=22)  # > 100 per (image, category): pycocotools' cap bites
    return gt, dets
