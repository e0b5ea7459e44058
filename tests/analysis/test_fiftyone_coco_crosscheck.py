"""FiftyOne's own COCO evaluation agrees with our COCO AP on an ODinW-like run (all 13 members).

Why the tolerance is 1e-9 (float summation only), from reading ``fiftyone.utils.eval.coco``:

* per-class AP is ``mean(precision[IoU, class, 101 recall points])`` with pycocotools' monotone
  interpolation and ``searchsorted(side="left")`` sampling — the same cells pycocotools averages;
  classes with no GT stay -1 and are left out of the mean, as in pycocotools;
* matching is pycocotools' greedy rule (crowds last, IoU threshold ``min(t, 1 - 1e-10)``), with
  ``max_preds=100`` per image and class = pycocotools' per-(image, category) ``maxDets``;
* IoU is computed on relative boxes; scaling x by 1/w and y by 1/h scales every area by the same
  factor, so IoU is unchanged up to rounding (no threshold sits within rounding distance here).

Where they *can* differ, and why the fake detector avoids it: on tied scores FiftyOne puts a
class's TPs before its FPs before its stable sort, while pycocotools keeps image order, so ties
can raise FiftyOne's AP; and our suite also keeps only the best 100 detections per image across
classes (GLIP post-processing), which FiftyOne does not. The fake detector emits distinct
scores and far fewer than 100 boxes per image.
"""

import argparse
import json

import pytest

from detclip_bench.cli import analyze


def test_fiftyone_coco_map_equals_our_coco_ap(fo_state, odinw_run, mini_root):
    import fiftyone as fo
    from fiftyone import ViewField as F

    p = argparse.ArgumentParser()
    analyze.add_parser(p.add_subparsers())
    args = p.parse_args(
        [
            "analyze",
            "--results",
            str(odinw_run),
            "--data-root",
            str(mini_root),
            "--name",
            "t-odinw",
            "--fiftyone-dir",
            str(fo_state),
        ]
    )
    assert args.func(args) == 0
    ds = fo.load_dataset("t-odinw")
    results = json.loads((odinw_run / "results.json").read_text())
    assert set(ds.distinct("member")) == set(results["members"])
    compared = 0
    for k, (member, res) in enumerate(sorted(results["members"].items())):
        view = ds.match(F("member") == member)
        classes = sorted(ds.info["category_ap"][member]["coco"])
        ev = view.evaluate_detections(
            "predictions",
            gt_field="ground_truth",
            eval_key=f"coco{k}",
            method="coco",
            compute_mAP=True,
            classes=classes,
            iscrowd="iscrowd",
        )
        ours = res["coco"]["metrics"]["AP"]
        assert ev.mAP() == pytest.approx(ours, abs=1e-9), member
        for name, ap in ds.info["category_ap"][member]["coco"].items():  # and class by class
            if ap is not None:
                assert ev.mAP(classes=[name]) == pytest.approx(ap, abs=1e-9), (member, name)
        compared += 1
    assert compared == 13
    assert 0.0 < results["aggregate"]["metrics"]["AP"] < 1.0  # a non-trivial run, not all-perfect or all-zero
