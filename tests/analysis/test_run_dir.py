"""Predictions grouped by image, including a member on which the model predicted nothing."""

import dataclasses

import numpy as np

from detclip_bench.analysis.records import iter_records
from detclip_bench.analysis.run_dir import group_by_image, load_run
from detclip_bench.predict.arrays import PredictionArrays


def _arrays(image_ids):
    n = len(image_ids)
    return PredictionArrays(
        np.asarray(image_ids, np.int64),
        np.zeros((n, 4), np.float32),
        np.arange(n, dtype=np.float32),
        np.zeros(n, np.int64),
    )


def test_group_by_image_keeps_every_row_with_its_image():
    groups = group_by_image(_arrays([7, 3, 7, 5, 3, 7]))
    assert {i: rows.tolist() for i, rows in groups.items()} == {3: [1, 4], 5: [3], 7: [0, 2, 5]}


def test_group_by_image_without_detections():
    # np.split(order, starts[1:]) yields one empty chunk for zero image ids; zipped strictly with the
    # ids that raised "zip() argument 2 is longer than argument 1" for a member with no detections
    assert group_by_image(_arrays([])) == {}


def test_member_without_detections_has_every_gt_missed(lvis_run, mini_root):
    member = load_run(lvis_run, data_root=mini_root).members[0]
    member = dataclasses.replace(member, predictions=PredictionArrays.concat([]))
    recs = list(iter_records(member, progress=False))
    assert recs and all(len(r.det_scores) == 0 for r in recs)
    assert all(set(r.match.gt_status.tolist()) <= {"fn", "ignored"} for r in recs)
    assert sum(r.match.counts["fn"] for r in recs) > 0
