"""The adapters against transformers' own forward pass and post-processors (the oracles)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detclip_bench.adapters.hf_common import iter_image_batches
from tests.adapters.tiny_models import random_images

PROMPTS = ["a cat", "a remote control", "zebra"]


@pytest.mark.parametrize("model_type", ["owlv2", "owlvit"])
def test_owl_scores_equal_full_forward_and_boxes_equal_post_processor(model_type, detectors):
    det = detectors(model_type)
    image = random_images([(80, 60)], seed=11)[0]
    inputs = det.processor(
        text=[PROMPTS], images=image, return_tensors="pt", max_length=16, padding="max_length", truncation=True
    )
    with torch.no_grad():
        out = det.model(**inputs)
        batch = next(iter_image_batches([image], det._preprocess, 1, "cpu"))
        (block,) = det._score_batch(batch, det._encode_prompts(PROMPTS))[0]
    torch.testing.assert_close(block.scores, out.logits[0].sigmoid(), rtol=0, atol=1e-6)
    ref = det.processor.post_process_grounded_object_detection(
        out, threshold=-1.0, target_sizes=[(60, 80)], text_labels=[PROMPTS]
    )[0]
    torch.testing.assert_close(block.boxes, ref["boxes"], rtol=0, atol=1e-4)
    # the processor keeps only the best class per box; our matrix holds all of them
    torch.testing.assert_close(block.scores.max(-1).values, ref["scores"], rtol=0, atol=1e-6)


def test_omdet_equals_its_post_processor(detectors):
    det = detectors("omdet-turbo")
    image = random_images([(80, 60)], seed=12)[0]
    inputs = det.processor(images=image, text=PROMPTS, return_tensors="pt")
    with torch.no_grad():
        out = det.model(**inputs)
    k = 15
    ref = det.processor.post_process_grounded_object_detection(
        out,
        text_labels=PROMPTS,
        threshold=-1.0,
        nms_threshold=0.5,
        target_sizes=[(60, 80)],
        max_num_det=max(k, det.model.config.num_queries),
    )[0]
    (pred,) = det.predict([image], PROMPTS, max_dets_per_image=k)
    n = len(pred.scores)
    np.testing.assert_allclose(pred.scores, ref["scores"][:n].numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(pred.labels, ref["labels"][:n].numpy())
    np.testing.assert_allclose(pred.boxes, ref["boxes"][:n].numpy(), atol=1e-4, rtol=0)


def test_grounding_dino_class_scores_are_max_over_class_tokens(detectors):
    det = detectors("grounding-dino")
    image = random_images([(70, 50)], seed=13)[0]
    inputs = det.processor(images=image, text=[PROMPTS], return_tensors="pt")
    with torch.no_grad():
        out = det.model(**inputs)
        batch = next(iter_image_batches([image], det._preprocess, 1, "cpu"))
        (block,) = det._score_batch(batch, det.plan(PROMPTS))[0]
    probs = out.logits[0].sigmoid()
    # "a cat. a remote control. zebra." → [CLS] a cat . a remote control . zebra . [SEP]
    expected = torch.stack([probs[:, 1:3].amax(-1), probs[:, 4:7].amax(-1), probs[:, 8:9].amax(-1)], -1)
    torch.testing.assert_close(block.scores, expected, rtol=0, atol=1e-6)
    ref = det.processor.post_process_grounded_object_detection(
        out, inputs["input_ids"], threshold=-1.0, text_threshold=0.0, target_sizes=[(50, 70)]
    )[0]
    torch.testing.assert_close(block.boxes, ref["boxes"], rtol=0, atol=1e-4)
