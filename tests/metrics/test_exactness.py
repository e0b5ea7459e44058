"""Every key equals the installed oracle (lvis-api, large-vocab-devil recipe, pycocotools) to 1e-6."""

import numpy as np
import pytest

from detclip_bench.metrics import CocoEvaluator, LvisEvaluator
from detclip_bench.metrics.synthetic import make_detections, make_lvis_like

from .conftest import feed_by_image
from .oracles import (
    assert_same,
    assert_same_per_category,
    devil_fixed_ap,
    limit_per_image,
    lvis_standard,
    pycocotools_bbox,
)


def test_case_exercises_the_traps(lvis_case):
    gt, dets = lvis_case
    images = {i["id"]: i for i in gt["images"]}
    pos = {(a["image_id"], a["category_id"]) for a in gt["annotations"]}
    unverified = [
        (i, c)
        for i, c in zip(dets.image_ids.tolist(), dets.category_ids.tolist(), strict=True)
        if (i, c) not in pos and c not in images[i]["neg_category_ids"]
    ]
    assert unverified, "needs detections on unverified categories"
    assert any(i["not_exhaustive_category_ids"] for i in gt["images"])
    assert any(a["area"] in (32.0**2, 96.0**2) for a in gt["annotations"])
    assert len(set(images) - {a["image_id"] for a in gt["annotations"]}) > 0, "needs empty images"
    _, counts = np.unique(dets.scores, return_counts=True)
    assert counts.max() > 50, "needs score ties"


def test_lvis_standard_equals_lvis_api(lvis_case):
    gt, dets = lvis_case
    ev = LvisEvaluator(gt, protocol="standard")
    feed_by_image(ev, dets)
    result = ev.compute()
    ref, ref_cat = lvis_standard(gt, dets.to_results())
    assert_same(result.metrics, ref)
    assert_same_per_category(result.categories, ref_cat)
    assert np.isnan(result.to_dataframe().loc[7, "ap"])  # no GT -> excluded, like the oracle's -1
    assert result.num_detections_evaluated < len(dets)  # the 300 cap did something


@pytest.mark.parametrize("k", [40, 150])
def test_lvis_fixed_equals_devil_recipe(lvis_case, k):
    gt, dets = lvis_case
    ev = LvisEvaluator(gt, protocol="fixed", topk_per_category=k)
    feed_by_image(ev, dets)
    result = ev.compute()
    ref, ref_cat = devil_fixed_ap(gt, dets.to_results(), k)
    assert_same(result.metrics, ref)
    assert_same_per_category(result.categories, ref_cat)
    assert result.to_dataframe()["num_dets"].max() == k


def test_fixed_tie_at_kth_goes_to_input_order():
    """Many exact ties straddle the K-th detection; the earlier one in the stream must win."""
    gt = make_lvis_like(40, 6, gt_per_image=6, seed=5)
    dets = make_detections(gt, 120, seed=6, score_decimals=1)  # ~10 distinct scores: ties everywhere
    k = 37
    ev = LvisEvaluator(gt, protocol="fixed", topk_per_category=k)
    feed_by_image(ev, dets)
    result = ev.compute()
    ref, _ = devil_fixed_ap(gt, dets.to_results(), k)
    assert_same(result.metrics, ref)
    # Reversing the stream changes which tied detections survive, hence the number: tie-breaking is real.
    rev = LvisEvaluator(gt, protocol="fixed", topk_per_category=k)
    rev.update(dets.image_ids[::-1], dets.boxes_xyxy[::-1], dets.scores[::-1], dets.category_ids[::-1])
    rev_ref, _ = devil_fixed_ap(gt, dets.to_results()[::-1], k)
    assert_same(rev.compute().metrics, rev_ref)
    assert rev_ref["AP"] != ref["AP"]


def test_fixed_cap_applies_before_federated_filter(lvis_case):
    gt, dets = lvis_case
    with pytest.warns(UserWarning, match="fewer than K"):
        result = LvisEvaluator(gt, protocol="fixed", topk_per_category=10**6)
        result.update(dets.image_ids, dets.boxes_xyxy, dets.scores, dets.category_ids)
        res = result.compute()
    assert res.num_detections_evaluated == len(dets)  # nothing dropped before the engine's federated rules
    ref, _ = devil_fixed_ap(gt, dets.to_results(), 10**6)
    assert_same(res.metrics, ref)


def test_coco_equals_pycocotools_without_image_cap(coco_case):
    gt, dets = coco_case
    ev = CocoEvaluator(gt, max_dets_per_image=None)
    feed_by_image(ev, dets)
    result = ev.compute()
    ref, ref_cat = pycocotools_bbox(gt, dets.to_results())
    assert any(a.get("iscrowd") for a in gt["annotations"])
    assert_same(result.metrics, ref)
    assert_same_per_category(result.categories, ref_cat)


def test_coco_per_image_cap_equals_glip_postprocess(coco_case):
    gt, dets = coco_case
    ev = CocoEvaluator(gt, max_dets_per_image=100)
    feed_by_image(ev, dets)
    result = ev.compute()
    ref, _ = pycocotools_bbox(gt, limit_per_image(dets.to_results(), 100))
    assert_same(result.metrics, ref)
    uncapped, _ = pycocotools_bbox(gt, dets.to_results())
    assert uncapped["AP"] != ref["AP"]  # the option matters on this input


@pytest.mark.parametrize("lookup", ["bit table", "sorted keys and binary search"])
def test_federated_prefilter_equals_lvis_api_whatever_the_lookup(lvis_case, monkeypatch, lookup):
    """Detections on unverified (image, category) pairs are dropped before the engine; both lookups
    (dense table for LVIS-sized GT, sorted keys for huge id spaces) give lvis-api's numbers."""
    import detclip_bench.metrics.gt as gt_module

    if lookup != "bit table":
        monkeypatch.setattr(gt_module.VerifiedPairs, "_MAX_TABLE", 0)
        monkeypatch.setattr(gt_module, "_positions", lambda ids: lambda v: np.searchsorted(ids, v))
    gt, dets = lvis_case
    ev = LvisEvaluator(gt, protocol="standard")
    feed_by_image(ev, dets)
    rows = ev.pool.result()
    assert len(ev.engine_rows(rows)) < len(rows) // 2  # most of this pool is on unverified pairs
    assert_same(ev.compute().metrics, lvis_standard(gt, dets.to_results())[0])
