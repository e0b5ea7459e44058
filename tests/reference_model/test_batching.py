"""collate_train: resize/flip geometry, concept sampling and de-duplication per data kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detclip_bench.errors import DataError
from detclip_bench.schema import DataKind
from reference_model.detclipv2 import InputSpec, collate_train
from reference_model.detclipv2.batching import IMAGENET_MEAN, IMAGENET_STD
from reference_model.detclipv2.noun_phrases import NounPhraseExtractor

from .conftest import VOCAB, caption_sample, det_sample

HEURISTIC = NounPhraseExtractor("")


class _Always:
    """An rng whose random() always says 'flip'."""

    def __init__(self, flip: bool) -> None:
        self.flip = flip
        self._rng = np.random.default_rng(0)

    def random(self):
        return 0.0 if self.flip else 1.0

    def __getattr__(self, name):
        return getattr(self._rng, name)


@pytest.mark.parametrize("flip", [False, True])
def test_detection_boxes_follow_resize_and_flip(flip):
    sample = det_sample(3)  # 96×64 image
    spec = InputSpec(kind=DataKind.DETECTION, size=(400, 128), flip=True, concepts_per_image=5)
    batch = collate_train([sample], spec, vocabulary=VOCAB, rng=_Always(flip))
    assert batch.image_sizes == [(128, 192)]  # short side 64 → 128, long 192 ≤ 400
    assert batch.images.shape == (1, 3, 128, 192)
    want = sample.boxes * 2
    if flip:
        want = np.stack([192 - want[:, 2], want[:, 1], 192 - want[:, 0], want[:, 3]], 1)
    np.testing.assert_allclose(batch.boxes[0].numpy(), want, rtol=1e-6)
    # the pixel under the first box's centre has the box's colour after normalisation
    x = int((want[0, 0] + want[0, 2]) / 2)
    y = int((want[0, 1] + want[0, 3]) / 2)
    rgb = batch.images[0, :, y, x] * torch.tensor(IMAGENET_STD) + torch.tensor(IMAGENET_MEAN)
    colour = np.array(sample.load_image().getpixel((int(sample.boxes[0, 0]) + 2, int(sample.boxes[0, 1]) + 2)))
    np.testing.assert_allclose(rgb.numpy() * 255, colour, atol=2)


def test_detection_concepts_positives_plus_sampled_negatives_deduplicated():
    samples = [det_sample(0), det_sample(1)]
    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64), concepts_per_image=5)
    batch = collate_train(samples, spec, vocabulary=VOCAB, rng=np.random.default_rng(1))
    assert len(batch.concepts) == len(set(batch.concepts))
    for s, labels in zip(samples, batch.labels, strict=True):
        assert [batch.concepts[i] for i in labels.tolist()] == [c.prompt() for c in s.box_concepts]
    assert len(batch.concepts) >= 5 and set(batch.concepts) <= {c.prompt() for c in VOCAB}


def test_grounding_negatives_never_repeat_a_positive_name():
    vocab = (*VOCAB, VOCAB[0].__class__(name="the red box", definition="a duplicate of a phrase"))
    spec = InputSpec(kind=DataKind.GROUNDING, size=(96, 64), concepts_per_image=100)
    batch = collate_train([det_sample(0, DataKind.GROUNDING)], spec, vocabulary=vocab, rng=np.random.default_rng(0))
    assert "the red box" in batch.concepts
    assert "the red box, a duplicate of a phrase" not in batch.concepts
    # every dictionary entry that is not a variant of a positive (same head noun: "... box") became a negative
    others = [c for c in VOCAB if c.name.split()[-1] != "box"]
    assert 0 < len(others) < len(VOCAB)
    assert sorted(batch.concepts[2:]) == sorted(c.prompt() for c in others)


def test_image_text_concepts_are_noun_phrases_plus_caption():
    spec = InputSpec(kind=DataKind.IMAGE_TEXT, size=(96, 96))
    batch = collate_train(
        [caption_sample(0), caption_sample(4)], spec, rng=np.random.default_rng(0), noun_phrases=HEURISTIC
    )
    first = [batch.concepts[i] for i in batch.caption_concepts[0]]
    # "grey background" is about the picture, not in it: dropped (detclip_bench.dictionary.META_NOUNS)
    assert first == ["red box", "a red box on a grey background"]
    assert batch.caption_concepts[1] == batch.caption_concepts[0]  # the same caption: shared columns
    assert batch.images.shape == (2, 3, 96, 96) and batch.image_sizes == [(64, 96), (64, 96)]


def test_classification_class_first_then_other_classes():
    spec = InputSpec(kind=DataKind.CLASSIFICATION, size=(96, 96), concepts_per_image=3)
    samples = [caption_sample(i, DataKind.CLASSIFICATION) for i in range(2)]
    batch = collate_train(samples, spec, vocabulary=VOCAB, rng=np.random.default_rng(0))
    assert [batch.concepts[r[0]] for r in batch.caption_concepts] == [VOCAB[0].prompt(), VOCAB[1].prompt()]
    assert 3 <= len(batch.concepts) <= 5


def test_mixed_kinds_and_empty_batches_are_rejected():
    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64))
    with pytest.raises(DataError, match="r0"):
        collate_train([det_sample(0, DataKind.GROUNDING)], spec, rng=np.random.default_rng(0))
    with pytest.raises(ValueError):
        collate_train([], spec, rng=np.random.default_rng(0))


def test_to_device_keeps_everything():
    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64))
    batch = collate_train([det_sample(0)], spec, vocabulary=VOCAB, rng=np.random.default_rng(0)).to("cpu")
    assert batch.boxes[0].dtype == torch.float32 and batch.labels[0].dtype == torch.long and len(batch) == 1
