"""Grounding DINO vocabulary chunking: token-budget plans, class spans, and exact multi-pass merging."""

from __future__ import annotations

import numpy as np
import pytest

from detclip_bench.adapters import hf_grounding_dino as gd
from tests.adapters.tiny_models import random_images

VOCAB = ["a cat", "a remote control", "zebra", "st. bernard", "traffic light", "dog"]


def test_plan_chunks_boundary_and_never_splits_a_class():
    # costs (tokens + separator): 3, 4, 2 → captions of 2 + cost tokens
    assert gd.plan_chunks([2, 3, 1], budget=11, prompts=["a"] * 3) == [range(0, 3)]  # 2 + 9 = 11 fits exactly
    assert gd.plan_chunks([2, 3, 1], budget=10, prompts=["a"] * 3) == [range(0, 2), range(2, 3)]
    assert gd.plan_chunks([2, 3, 1], budget=6, prompts=["a"] * 3) == [range(0, 1), range(1, 2), range(2, 3)]
    with pytest.raises(ValueError, match=r"prompt 1 \('long'\) needs 7 tokens"):
        gd.plan_chunks([2, 4, 1], budget=6, prompts=["x", "long", "y"])


def test_spans_point_at_each_class_tokens(detectors):
    det = detectors("grounding-dino")
    (chunk,) = det.plan(VOCAB)
    tokens = det.processor.tokenizer.convert_ids_to_tokens(chunk.text["input_ids"][0])
    words = [" ".join(tokens[a:b]) for a, b in chunk.spans]
    assert words == ["a cat", "a remote control", "zebra", "st . bernard", "traffic light", "dog"]
    assert chunk.text["input_ids"].shape[1] == 2 + sum(b - a + 1 for a, b in chunk.spans)


def test_budget_exactly_fitting_is_one_pass_and_one_less_splits(model_dirs):
    source = str(model_dirs("grounding-dino"))
    full = gd.GroundingDinoDetector.load(source)
    n_tokens = full.plan(VOCAB)[0].text["input_ids"].shape[1]
    exact = gd.GroundingDinoDetector.load(source, gd.GroundingDinoOptions(token_budget=n_tokens))
    assert len(exact.plan(VOCAB)) == 1
    chunks = gd.GroundingDinoDetector.load(source, gd.GroundingDinoOptions(token_budget=n_tokens - 1)).plan(VOCAB)
    assert [c.class_offset for c in chunks] == [0, 5]  # the last class ("dog", 2 tokens) moves to pass 2
    images = random_images([(70, 50)], seed=5)
    a = full.predict(images, VOCAB, max_dets_per_image=30)[0]
    b = exact.predict(images, VOCAB, max_dets_per_image=30)[0]
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.boxes, b.boxes)


def test_chunked_prediction_equals_merged_single_passes(model_dirs):
    """Forced small chunks == each chunk run alone as a one-pass vocabulary, labels offset, then merged."""
    source = str(model_dirs("grounding-dino"))
    chunked = gd.GroundingDinoDetector.load(source, gd.GroundingDinoOptions(token_budget=9))
    plan = chunked.plan(VOCAB)
    assert len(plan) >= 3
    covered = []
    for chunk in plan:
        covered += list(range(chunk.class_offset, chunk.class_offset + len(chunk.spans)))
    assert covered == list(range(len(VOCAB)))  # every class in exactly one pass, in order

    one_pass = gd.GroundingDinoDetector.load(source)
    images = random_images([(70, 50), (40, 64)], seed=6)
    k = 25
    merged = chunked.predict(images, VOCAB, max_dets_per_image=k)
    for i, image in enumerate(images):
        scores, labels, boxes = [], [], []
        for chunk in plan:
            sub = VOCAB[chunk.class_offset : chunk.class_offset + len(chunk.spans)]
            p = one_pass.predict([image], sub, max_dets_per_image=k)[0]
            scores.append(p.scores)
            labels.append(p.labels + chunk.class_offset)
            boxes.append(p.boxes)
        order = np.argsort(-np.concatenate(scores), kind="stable")[:k]
        np.testing.assert_allclose(merged[i].scores, np.concatenate(scores)[order], atol=1e-6, rtol=0)
        np.testing.assert_array_equal(merged[i].labels, np.concatenate(labels)[order])
        np.testing.assert_allclose(merged[i].boxes, np.concatenate(boxes)[order], atol=1e-4, rtol=0)
        assert len(set(merged[i].labels.tolist())) > 1


def test_lvis_sized_vocabulary_overflows_one_pass(detectors):
    det = detectors("grounding-dino")  # tiny model: max_text_len = 32
    vocab = [f"class number {i}" for i in range(40)]
    plan = det.plan(vocab)
    assert all(c.text["input_ids"].shape[1] <= det.max_text_len for c in plan)
    assert sum(len(c.spans) for c in plan) == 40 and len(plan) > 1
    (pred,) = det.predict(random_images([(50, 50)], seed=7), vocab, max_dets_per_image=50)
    assert pred.labels.max() < 40 and len(pred.scores) == 50


def test_class_longer_than_the_budget_is_an_error(detectors):
    det = detectors("grounding-dino")
    with pytest.raises(ValueError, match="more than the text budget"):
        det.plan(["cat", " ".join(["word"] * 40)])


def test_mean_token_reduce_differs_from_max_only_on_multi_token_classes(model_dirs):
    source = str(model_dirs("grounding-dino"))
    image = random_images([(60, 60)], seed=8)
    prompts = ["zebra", "dog"]  # one token each: max == mean
    a = gd.GroundingDinoDetector.load(source).predict(image, prompts, max_dets_per_image=40)[0]
    b = gd.GroundingDinoDetector.load(source, gd.GroundingDinoOptions(token_reduce="mean")).predict(
        image, prompts, max_dets_per_image=40
    )[0]
    np.testing.assert_array_equal(a.scores, b.scores)
