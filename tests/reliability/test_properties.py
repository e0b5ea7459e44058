"""Property-based checks (hypothesis): evaluator invariances and the box coder round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from detclip_bench.metrics import CocoEvaluator, LvisEvaluator
from detclip_bench.metrics.synthetic import Detections, make_coco_like, make_detections, make_lvis_like
from reference_model.detclipv2.box_coder import DeltaBoxCoder

FAST = settings(max_examples=5, deadline=None, derandomize=True)
LVIS_GT = make_lvis_like(14, 20, gt_per_image=5, seed=31)  # 8 neg + ≤6 pos: unverified remain
COCO_GT = make_coco_like(12, 4, gt_per_image=4, seed=32)


def _evaluators(protocol: str):
    if protocol == "coco":
        return CocoEvaluator(COCO_GT, max_dets_per_image=None)
    if protocol == "lvis-standard":
        return LvisEvaluator(LVIS_GT, protocol="standard")
    return LvisEvaluator(LVIS_GT, protocol="fixed", topk_per_category=12)  # K bites: ~20 dets per category


def _metrics(protocol: str, dets: Detections) -> dict:
    ev = _evaluators(protocol)
    ev.update(dets.image_ids, dets.boxes_xyxy, dets.scores, dets.category_ids)
    return ev.compute().metrics


def _dets(protocol: str, seed: int) -> Detections:
    gt = COCO_GT if protocol == "coco" else LVIS_GT
    dets = make_detections(gt, 30, seed=seed, score_decimals=None)
    # the generator clips near-GT scores at 1.0; give every detection a distinct score (no ties)
    dets.scores = (np.random.default_rng(seed).permutation(len(dets)) + 1) / (len(dets) + 1)
    return dets


PROTOCOLS = ["coco", "lvis-standard", "lvis-fixed"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@FAST
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_permuting_detections_never_changes_the_result(protocol, seed, perm_seed):
    dets = _dets(protocol, seed)
    assert len(np.unique(dets.scores)) == len(dets)  # the property's premise
    order = np.random.default_rng(perm_seed).permutation(len(dets))
    assert _metrics(protocol, dets.select(order)) == _metrics(protocol, dets)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@FAST
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_permuting_images_in_the_gt_never_changes_the_result(protocol, seed, perm_seed):
    gt = COCO_GT if protocol == "coco" else LVIS_GT
    dets = _dets(protocol, seed)
    shuffled = {
        **gt,
        "images": [gt["images"][i] for i in np.random.default_rng(perm_seed).permutation(len(gt["images"]))],
    }
    ev = (
        CocoEvaluator(shuffled, max_dets_per_image=None)
        if protocol == "coco"
        else LvisEvaluator(shuffled, protocol=protocol.removeprefix("lvis-"), topk_per_category=12)
    )
    ev.update(dets.image_ids, dets.boxes_xyxy, dets.scores, dets.category_ids)
    assert ev.compute().metrics == _metrics(protocol, dets)


def test_ties_are_broken_by_input_order_as_documented():
    """At a score tie the earlier detection wins (stable sort, as lvis-api / large-vocab-devil): with K=1
    and a TP and an FP at the same score, swapping their order changes Fixed AP from 1 to 0 for that class."""
    ann = next(a for a in LVIS_GT["annotations"] if a["category_id"] == 1)
    x, y, w, h = ann["bbox"]
    tp = np.array([[x, y, x + w, y + h]])
    fp = np.array([[0.0, 0.0, 1.0, 1.0]])
    per_class = []
    for first, second in ((tp, fp), (fp, tp)):
        ev = LvisEvaluator(LVIS_GT, protocol="fixed", topk_per_category=1)
        ev.update(ann["image_id"], np.concatenate([first, second]), [0.5, 0.5], [1, 1])
        per_class.append(next(r.ap for r in ev.compute().categories if r.id == 1))
    assert per_class[0] > 0 and per_class[1] == 0


@FAST
@given(seed=st.integers(0, 10_000), extra_seed=st.integers(0, 10_000))
def test_detection_on_an_unverified_category_never_changes_lvis_ap(seed, extra_seed):
    dets = _dets("lvis-standard", seed)
    rng = np.random.default_rng(extra_seed)
    image = LVIS_GT["images"][int(rng.integers(len(LVIS_GT["images"])))]
    pos = {a["category_id"] for a in LVIS_GT["annotations"] if a["image_id"] == image["id"]}
    unverified = sorted({c["id"] for c in LVIS_GT["categories"]} - pos - set(image["neg_category_ids"]))
    cat = unverified[int(rng.integers(len(unverified)))]
    box = np.array([[5.0, 5.0, 60.0, 80.0]])
    more = Detections(
        np.r_[dets.image_ids, image["id"]],
        np.r_[dets.boxes_xyxy, box],
        np.r_[dets.scores, 0.999],
        np.r_[dets.category_ids, cat],
    )
    # standard protocol: 30 dets/image stay under the 300 cap, so nothing is displaced
    assert _metrics("lvis-standard", more) == _metrics("lvis-standard", dets)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@FAST
@given(seed=st.integers(0, 10_000), n_shards=st.integers(2, 5))
def test_sharded_streams_merge_to_the_one_shot_result(protocol, seed, n_shards):
    dets = _dets(protocol, seed)
    states = []
    for part in np.array_split(np.arange(len(dets)), n_shards):
        shard = _evaluators(protocol)
        shard.update(dets.image_ids[part], dets.boxes_xyxy[part], dets.scores[part], dets.category_ids[part])
        states.append(shard.state_dict())
    merged = _evaluators(protocol)
    merged.merge(states)
    assert merged.compute().metrics == _metrics(protocol, dets)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    boxes=st.lists(
        st.tuples(
            st.floats(0, 500),
            st.floats(0, 500),
            st.floats(2, 400),
            st.floats(2, 400),
            st.floats(-0.5, 0.5),
            st.floats(-0.5, 0.5),
            st.floats(0.25, 4),
            st.floats(0.25, 4),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_box_coder_encode_decode_round_trip(boxes):
    """decode(encode(gt, anchor), anchor) == gt for anchors within the coder's clamp range (size ratio
    ≤ 4, centre offset ≤ half a box)."""
    b = torch.tensor(boxes, dtype=torch.float64)
    x, y, w, h, dx, dy, sw, sh = b.unbind(1)
    gt_boxes = torch.stack([x, y, x + w, y + h], 1).float()
    ax, ay, aw, ah = x + dx * w, y + dy * h, w * sw, h * sh
    anchors = torch.stack([ax, ay, ax + aw, ay + ah], 1).float()
    coder = DeltaBoxCoder()
    decoded = coder.decode(coder.encode(gt_boxes, anchors), anchors)
    torch.testing.assert_close(decoded, gt_boxes, rtol=1e-4, atol=1e-2)
