"""Post-processing (threshold, per-level top-k, class-wise NMS, rescale) and batched predict()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from detclip_bench.adapters import Detector, Prediction
from reference_model.detclipv2 import DetCLIPv2
from reference_model.detclipv2.decode import postprocess_detections

from .conftest import tiny_config


def _model(**overrides) -> DetCLIPv2:
    torch.manual_seed(0)
    return DetCLIPv2(tiny_config(**overrides))


def _decode(model, class_prob, centerness, deltas, anchors, thresh, max_dets, scale, orig_size) -> Prediction:
    """The decoding predict() runs, with the model's own box coder, per-level top-k and NMS IoU."""
    cfg = model.config
    return postprocess_detections(
        class_prob, centerness, deltas, anchors, coder=model.coder, pre_nms_topk=cfg.pre_nms_topk,
        nms_iou=cfg.nms_iou, thresh=thresh, max_dets=max_dets, scale=scale, orig_size=orig_size,
    )  # fmt: skip


def test_postprocess_classwise_nms_threshold_cap_and_rescale():
    model = _model(nms_iou=0.6, pre_nms_topk=1000)
    level = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40], [0, 0, 10, 10.0]])
    deltas = torch.zeros(4, 4)  # predicted box = anchor
    scores = torch.tensor(
        [
            [0.9, 0.00, 0.8],  # anchor 0: class 0 and class 2 both survive (class-wise NMS)
            [0.7, 0.00, 0.0],  # anchor 1: IoU .68 with anchor 0 in class 0 → suppressed
            [0.0, 0.60, 0.0],
            [0.0, 0.01, 0.0],  # below the threshold
        ]
    )
    ones = torch.ones(4)  # centerness 1: the class probability is the score
    pred = _decode(model, scores, ones, deltas, [level], 0.05, 10, 0.5, (80, 60))
    assert pred.labels.tolist() == [0, 2, 1]
    assert pred.scores.tolist() == pytest.approx([0.9, 0.8, 0.6])
    # scale 0.5 → original coordinates are twice the network's; clipped to the 80×60 image
    assert pred.boxes.tolist() == [[0, 0, 20, 20], [0, 0, 20, 20], [60, 60, 80, 60]]
    capped = _decode(model, scores, ones, deltas, [level], 0.05, 2, 0.5, (80, 60))
    assert capped.labels.tolist() == [0, 2]


def test_threshold_and_topk_use_the_class_probability_before_centerness():
    """mmdetection ATSS / GLIP order: a 0.06 class probability with centerness 0.5 passes a 0.05
    threshold and scores 0.03; the per-level top-k ranks by class probability, not the product."""
    model = _model(pre_nms_topk=1)
    boxes = torch.tensor([[0, 0, 10, 10], [50, 50, 60, 60.0]])
    probs = torch.tensor([[0.06], [0.04]])
    pred = _decode(model, probs, torch.tensor([0.5, 1.0]), torch.zeros(2, 4), [boxes], 0.05, 10, 1.0, (99, 99))
    assert pred.scores.tolist() == pytest.approx([0.03])  # anchor 1's product 0.04 > 0.03, but 0.04 ≤ threshold
    ranked = _decode(
        model,
        torch.tensor([[0.9], [0.8]]),
        torch.tensor([0.1, 1.0]),
        torch.zeros(2, 4),
        [boxes],
        0.0,
        10,
        1.0,
        (99, 99),
    )
    assert ranked.scores.tolist() == pytest.approx([0.09])  # top-1 by probability (0.9), product 0.09 < 0.8


def test_pre_nms_topk_is_per_level():
    model = _model(pre_nms_topk=1)
    boxes = torch.tensor([[0, 0, 10, 10], [50, 50, 60, 60.0]])
    scores = torch.tensor([[0.9], [0.8]])
    one_level = _decode(model, scores, torch.ones(2), torch.zeros(2, 4), [boxes], 0.0, 10, 1.0, (100, 100))
    two_levels = _decode(
        model, scores, torch.ones(2), torch.zeros(2, 4), [boxes[:1], boxes[1:]], 0.0, 10, 1.0, (100, 100)
    )
    assert len(one_level.scores) == 1 and len(two_levels.scores) == 2


def test_predict_returns_predictions_in_original_pixels_and_is_a_detector():
    model = _model()
    assert isinstance(model, Detector)
    images = [Image.new("RGB", (200, 150), (10, 200, 30)), Image.new("RGB", (50, 120), (200, 0, 0))]
    preds = model.predict(images, ["red box", "green box", "zebra"], max_dets_per_image=7)
    assert len(preds) == 2 and all(isinstance(p, Prediction) for p in preds)
    for p, im in zip(preds, images, strict=True):
        assert 0 < len(p.scores) <= 7
        assert (p.boxes[:, 2] <= im.width).all() and (p.boxes[:, 3] <= im.height).all()
        assert (p.boxes >= 0).all() and set(p.labels.tolist()) <= {0, 1, 2}
        assert np.all(np.diff(p.scores) <= 1e-6)  # sorted by score
    # batching equal-size images does not change results (mixed sizes differ through padding, as in
    # every padded-batch detector, since GroupNorm statistics include the padded border)
    same = [images[0], Image.new("RGB", (200, 150), (200, 0, 0))]
    batched = model.predict(same, ["red box", "zebra"])
    alone = model.predict(same[1:], ["red box", "zebra"])[0]
    np.testing.assert_allclose(alone.scores, batched[1].scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(alone.boxes, batched[1].boxes, rtol=1e-4, atol=1e-3)


def test_score_is_sigmoid_logit_times_sigmoid_centerness():
    model = _model(score_thresh=0.0)
    image = Image.new("RGB", (96, 96), (90, 90, 90))
    pred = model.predict([image], ["a"], max_dets_per_image=1)[0]
    with torch.no_grad():
        from reference_model.detclipv2.batching import to_tensor

        out, _ = model.dense(to_tensor(image)[None])
        text = model.text_encoder.encode_cached(["a"])
        s = model.head.logits(out.embeddings, text)[0, :, 0].sigmoid() * out.centerness[0].sigmoid()
    assert pred.scores[0] == pytest.approx(s.max().item(), rel=1e-5)
