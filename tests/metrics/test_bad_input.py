"""Bad GT or predictions: a DataError naming file and record, or the oracles' result plus a warning."""

import json

import numpy as np
import pytest

from detclip_bench.errors import DataError
from detclip_bench.metrics import CocoEvaluator, LvisEvaluator, score_files
from detclip_bench.metrics.synthetic import make_coco_like, make_lvis_like


@pytest.fixture
def gt():
    return make_coco_like(5, 3, seed=1)


BOX = np.array([[10.0, 10.0, 50.0, 60.0]])


@pytest.mark.parametrize(
    ("image_id", "box", "score", "cat", "match"),
    [
        (999, BOX, [0.5], [1], "image_id is not in the GT"),
        (1, BOX, [0.5], [77], "category_id is not a GT category"),
        (1, BOX, [float("nan")], [1], "NaN or infinite"),
        (1, BOX, [float("inf")], [1], "NaN or infinite"),
        (1, np.array([[10.0, np.nan, 50.0, 60.0]]), [0.5], [1], "NaN or infinite coordinate"),
        (1, np.array([[50.0, 10.0, 10.0, 60.0]]), [0.5], [1], "negative width"),
    ],
)
def test_bad_detections_raise(gt, image_id, box, score, cat, match):
    ev = CocoEvaluator(gt)
    ev.update(image_id, box, score, cat)  # values are checked per block of detections, or at flush/compute
    with pytest.raises(DataError, match=match):
        ev.flush()


@pytest.mark.parametrize("image_id", [1, np.int32(1), [1, 1], 1.0])
def test_a_refused_update_leaves_nothing_behind(gt, image_id):
    """A refused update was written to the buffer for checking, but never kept: the next update and the
    result are as if it had not happened. Accepted image-id forms: int, numpy int, per-row array, 1.0."""
    boxes = np.array([[10.0, 10.0, 50.0, 60.0], [5.0, 5.0, 20.0, 20.0]])
    clean, dirty = CocoEvaluator(gt), CocoEvaluator(gt)
    dirty.update(image_id, boxes, [0.5, float("nan")], [1, 2])
    with pytest.raises(DataError, match="NaN"):
        dirty.flush()
    for ev in (clean, dirty):
        ev.update(image_id, boxes, [0.5, 0.4], [1, 2])
    assert dirty.pool.num_seen == 2
    np.testing.assert_array_equal(dirty.pool.result().engine, clean.pool.result().engine)
    assert dirty.compute().metrics == clean.compute().metrics


@pytest.mark.parametrize("image_id", [1.5, True, "1"])
def test_image_id_must_be_a_gt_id(gt, image_id):
    ev = CocoEvaluator(gt)
    with pytest.raises((DataError, ValueError)):
        ev.update(image_id, BOX, [0.5], [1])
        ev.flush()


def test_bad_update_inside_a_block_names_its_detection_and_keeps_the_rest(gt):
    """Image 3's NaN is found when the block is checked: the error names detection 5 (the sixth fed) on
    image 3, images 1, 2 and 4 are kept, and the stream goes on."""
    boxes = np.array([[10.0, 10.0, 50.0, 60.0], [5.0, 5.0, 20.0, 20.0]])
    ev, clean = CocoEvaluator(gt), CocoEvaluator(gt)
    for image_id in (1, 2, 3, 4):
        ev.update(image_id, boxes, [0.5, float("nan") if image_id == 3 else 0.4], [1, 2])
        if image_id != 3:
            clean.update(image_id, boxes, [0.5, 0.4], [1, 2])
    with pytest.raises(DataError, match="NaN") as err:
        ev.flush()
    assert err.value.record == "detection 5 (image_id 3)"
    assert ev.pool.num_seen == 6
    np.testing.assert_array_equal(ev.pool.result().engine, clean.pool.result().engine)
    assert ev.compute().metrics == clean.compute().metrics


def test_length_mismatch(gt):
    with pytest.raises(DataError, match="length mismatch"):
        CocoEvaluator(gt).update(1, np.zeros((2, 4)), [0.1, 0.2], [1])


def test_duplicate_gt_ids(tmp_path, gt):
    gt["annotations"][1]["id"] = gt["annotations"][0]["id"]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    with pytest.raises(DataError, match="duplicate annotations id") as err:
        CocoEvaluator(path)
    assert str(path) in str(err.value)


def test_duplicate_image_ids(gt):
    gt["images"][1]["id"] = gt["images"][0]["id"]
    with pytest.raises(DataError, match="duplicate images id"):
        CocoEvaluator(gt)


def test_lvis_gt_needs_federated_fields():
    gt = make_lvis_like(3, 5, seed=0)
    del gt["images"][0]["neg_category_ids"]
    with pytest.raises(DataError, match="neg_category_ids"):
        LvisEvaluator(gt)


def test_empty_prediction_file(tmp_path, gt):
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text("[]")
    with pytest.raises(DataError, match="empty results list"):
        score_files(tmp_path / "gt.json", tmp_path / "pred.json", "coco")


def test_no_detections_in_stream_warns_and_scores_zero(gt):
    with pytest.warns(UserWarning, match="no detections"):
        result = CocoEvaluator(gt).compute()
    assert result.metrics["AP"] == 0.0


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}, "not a bbox detection"),
        ({"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}, "not a bbox detection"),
        ({"image_id": 1, "category_id": 1, "bbox": [1, 2, -3, 4], "score": 0.5}, "negative box width"),
        ({"image_id": 12345, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}, "not in the GT"),
    ],
)
def test_bad_results_file_names_record(tmp_path, gt, record, match):
    good = {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps([good, record]))
    with pytest.raises(DataError, match=match) as err:
        score_files(tmp_path / "gt.json", tmp_path / "pred.json", "coco")
    assert "pred.json" in str(err.value) and "1" in str(err.value.record)


def test_the_earliest_bad_update_is_reported_first_whatever_its_fault(gt):
    """An unknown category on image 2 comes before a NaN score on image 4: image 2 is named (and dropped)
    first, image 4 at the next check, and nothing bad is ever kept."""
    boxes = np.array([[10.0, 10.0, 50.0, 60.0]])
    ev = CocoEvaluator(gt)
    for image_id, score, cat in ((1, 0.5, 1), (2, 0.5, 77), (3, 0.5, 1), (4, float("nan"), 1), (5, 0.5, 2)):
        ev.update(image_id, boxes, [score], [cat])
    with pytest.raises(DataError, match="category_id is not a GT category") as first:
        ev.flush()
    assert first.value.record == "detection 1 (image_id 2)"
    with pytest.raises(DataError, match="NaN") as second:
        ev.flush()
    assert second.value.record == "detection 2 (image_id 4)"  # counted among kept detections: 1 and 3
    kept = ev.pool.result()
    assert kept["image_ids"].tolist() == [1, 3, 5]
