"""TP/FP/FN verdicts on hand-made images, and the matcher against pycocotools' own evaluateImg."""

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detclip_bench.analysis.matching import ImageGT, match_image

A, B, C, CROWD = [0, 0, 10, 10], [50, 0, 60, 10], [0, 50, 10, 60], [100, 100, 200, 200]


def test_coco_verdicts_and_error_kinds():
    gt = ImageGT([A, B, C, CROWD], [1, 1, 2, 1], crowd=[False, False, False, True])
    dets = [
        (A, 0.9, 1),  # hit on A
        ([0, 0, 10, 9], 0.8, 1),  # A again: duplicate
        ([55, 0, 65, 10], 0.7, 1),  # IoU 1/3 with B: localisation
        (C, 0.6, 1),  # on the class-2 box with class 1: confusion
        ([300, 300, 310, 310], 0.5, 3),  # nothing near: background (COCO: every category verified)
        ([120, 120, 130, 130], 0.4, 1),  # inside the crowd region: ignored
    ]
    m = match_image(gt, [d[0] for d in dets], [d[1] for d in dets], [d[2] for d in dets])
    assert m.det_status.tolist() == ["tp", "fp", "fp", "fp", "fp", "ignored"]
    assert m.det_reason.tolist() == ["", "duplicate", "localization", "confusion", "background", "crowd"]
    assert m.det_confused_with.tolist() == [-1, -1, -1, 2, -1, -1]
    assert m.gt_status.tolist() == ["tp", "fn", "fn", "ignored"]
    assert m.gt_det.tolist() == [0, -1, -1, -1]
    assert abs(m.det_iou[2] - 1 / 3) < 1e-12
    assert m.counts == {"tp": 1, "fp": 4, "fn": 2, "ignored": 1}


def test_lvis_federated_rules():
    # positives: 1 (box A) and 3 (box C, not exhaustively annotated); 2 verified absent; 4 unverified
    gt = ImageGT(
        [A, C], [1, 3], neg_category_ids=frozenset({2}), not_exhaustive_category_ids=frozenset({3}), federated=True
    )
    dets = [(A, 0.9, 1), (B, 0.8, 4), (B, 0.7, 2), (C, 0.6, 3), ([80, 80, 90, 90], 0.5, 3), (B, 0.4, 1)]
    m = match_image(gt, [d[0] for d in dets], [d[1] for d in dets], [d[2] for d in dets])
    assert m.det_status.tolist() == ["tp", "ignored", "fp", "tp", "ignored", "fp"]
    assert m.det_reason.tolist() == ["", "unverified", "background", "", "not_exhaustive", "background"]
    assert m.counts == {"tp": 2, "fp": 2, "fn": 0, "ignored": 2}
    # the same detections without federated rules: the unverified and not-exhaustive ones are FPs
    plain = match_image(ImageGT([A, C], [1, 3]), [d[0] for d in dets], [d[1] for d in dets], [d[2] for d in dets])
    assert plain.counts == {"tp": 2, "fp": 4, "fn": 0, "ignored": 0}


def test_greedy_order_is_by_score_not_by_iou():
    gt = ImageGT([[0, 0, 10, 10], [2, 0, 12, 10]], [1, 1])
    m = match_image(gt, [[2, 0, 12, 10], [1, 0, 11, 10]], [0.5, 0.9], [1, 1])
    # 0.9 goes first: IoU 0.82 with both GTs, the tie goes to the first (GT 0); the 0.5 one then takes GT 1
    assert m.det_gt.tolist() == [1, 0]
    assert m.det_status.tolist() == ["tp", "tp"]


def test_matches_pycocotools_evaluate_img_on_random_images():
    """Oracle: per-detection matched / ignored flags of pycocotools at IoU 0.5 (area all, maxDets 100)."""
    rng = np.random.default_rng(7)
    images, anns, dets = [], [], []
    for i in range(1, 9):
        images.append({"id": i, "width": 200, "height": 200})
        for _ in range(rng.integers(1, 6)):
            x, y, w, h = (*rng.uniform(0, 150, 2), *rng.uniform(10, 50, 2))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": int(rng.integers(1, 4)),
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": int(rng.random() < 0.15),
                }
            )
        for a in [a for a in anns if a["image_id"] == i]:
            for _ in range(2):
                x, y, w, h = np.asarray(a["bbox"]) + rng.normal(0, 6, 4)
                dets.append(
                    {
                        "image_id": i,
                        "category_id": int(rng.integers(1, 4)) if rng.random() < 0.3 else a["category_id"],
                        "bbox": [x, y, abs(w) + 1, abs(h) + 1],
                        "score": float(rng.random()),
                    }
                )
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in (1, 2, 3)]}
    gt.createIndex()
    ev = COCOeval(gt, gt.loadRes(dets), "bbox")
    ev.evaluate()
    checked = 0
    for e in ev.evalImgs:  # ordered category > area range > image; keep area 'all'
        if e is None or e["aRng"] != ev.params.areaRng[0]:
            continue
        img_dets = [d for d in dets if d["image_id"] == e["image_id"]]
        img_anns = [a for a in anns if a["image_id"] == e["image_id"]]
        to_xyxy = lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]]  # noqa: E731
        m = match_image(
            ImageGT(
                [to_xyxy(a["bbox"]) for a in img_anns],
                [a["category_id"] for a in img_anns],
                crowd=[bool(a["iscrowd"]) for a in img_anns],
            ),
            [to_xyxy(d["bbox"]) for d in img_dets],
            [d["score"] for d in img_dets],
            [d["category_id"] for d in img_dets],
        )
        ann_ids = [a["id"] for a in img_anns]
        for k, det_id in enumerate(e["dtIds"]):
            d = det_id - 1  # loadRes numbers detections 1.. in input order
            j = img_dets.index(dets[d])
            matched_gt = int(e["dtMatches"][0, k])
            ignored = bool(e["dtIgnore"][0, k])
            if ignored:
                assert m.det_status[j] == "ignored"
            elif matched_gt:
                assert m.det_status[j] == "tp" and ann_ids[m.det_gt[j]] == matched_gt
            else:
                assert m.det_status[j] == "fp"
            checked += 1
    assert checked == len(dets)
