"""Grounding phrases follow a horizontal flip ("left" ↔ "right"); COCO crowd boxes are no training instances."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from detclip_bench.phrases import swap_left_right
from detclip_bench.schema import Concept, DataKind
from reference_model.detclipv2 import InputSpec, collate_train
from tests.reference_model.conftest import det_sample


def test_swap_left_right_keeps_case_and_leaves_other_words():
    assert swap_left_right("the cup on the Left") == "the cup on the Right"
    assert swap_left_right("LEFT hand, right-hand side, leftmost cup") == "RIGHT hand, left-hand side, rightmost cup"
    assert swap_left_right("bright light, lefty, copyright") == "bright light, lefty, copyright"


def _grounding(flip: bool):
    s = det_sample(0, DataKind.GROUNDING)
    s = replace(s, concepts=(Concept("the box on the left"), Concept("the right box")))
    spec = InputSpec(kind=DataKind.GROUNDING, size=(96, 64), flip=flip, concepts_per_image=2)
    for seed in range(20):  # find a seed whose coin flips the image (and one that does not)
        batch = collate_train([s], spec, rng=np.random.default_rng(seed))
        flipped = not np.allclose(batch.boxes[0][:, 0].numpy(), s.boxes[:, 0] * 1.0, atol=1e-3)
        if flipped == flip:
            return batch
    raise AssertionError("no seed gave the wanted flip")


def test_flipped_grounding_images_swap_left_and_right_in_their_phrases():
    assert _grounding(flip=True).concepts == ["the box on the right", "the left box"]
    assert _grounding(flip=False).concepts == ["the box on the left", "the right box"]


def test_crowd_boxes_are_dropped_from_detection_targets():
    s = det_sample(3)
    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64), flip=False, concepts_per_image=2)
    plain = collate_train([replace(s, meta={"iscrowd": np.array([0, 0])})], spec, rng=np.random.default_rng(0))
    crowd = collate_train([replace(s, meta={"iscrowd": np.array([0, 1])})], spec, rng=np.random.default_rng(0))
    assert len(plain.boxes[0]) == 2 and len(crowd.boxes[0]) == 1
    assert crowd.labels[0].tolist() == plain.labels[0][:1].tolist()
