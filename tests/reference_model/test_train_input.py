"""The training input path: draft JPEG decoding, to_tensor, pad_stack, image_batch and batched noun phrases.

collate_train decodes image-text / classification JPEGs at a draft (DCT-scaled) size.

Tolerance of the draft path against the full decode, over the valid (unpadded) region, in
0..255 pixel units after undoing the normalisation: mean |Δ| ≤ 2 and PSNR ≥ 35 dB. The two
differ only in how the downscale low-passes (DCT scaling + bilinear vs bilinear with a wide
support), so the difference sits on sharp edges.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import reference_model.detclipv2.batching as batching
from detclip_bench.schema import Concept, DataKind, ImageRef, Sample
from reference_model.detclipv2 import InputSpec, collate_train
from reference_model.detclipv2.noun_phrases import NounPhraseExtractor

HEURISTIC = NounPhraseExtractor("")
STD = torch.tensor(batching.IMAGENET_STD)[:, None, None]


def photo_like_jpeg(w: int, h: int, seed: int) -> bytes:
    """Smooth colour fields plus hard-edged rectangles, JPEG quality 90."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (h // 16, w // 16, 3), dtype=np.uint8)).resize((w, h), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(20):
        x, y = int(rng.integers(0, w - 100)), int(rng.integers(0, h - 100))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        draw.rectangle([x, y, x + int(rng.integers(5, 100)), y + int(rng.integers(5, 100))], fill=colour)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _sample(kind: DataKind, w: int, h: int) -> Sample:
    concepts = (Concept("red box"),) if kind is DataKind.CLASSIFICATION else ()
    return Sample(
        kind=kind,
        source="t",
        record_id=f"{w}x{h}",
        image=ImageRef(data=photo_like_jpeg(w, h, w + h)),
        caption="a red box",
        concepts=concepts,
    )


def _both(samples, spec, monkeypatch):
    """(draft batch, full-decode batch, decoded sizes seen on the draft path)."""
    decoded = []
    real = batching.load_for_resize

    def spy(sample, size, draft):
        img, stored = real(sample, size, draft)
        decoded.append(img.size)
        return img, stored

    monkeypatch.setattr(batching, "load_for_resize", spy)
    fast = collate_train(samples, spec, rng=np.random.default_rng(0), noun_phrases=HEURISTIC)
    monkeypatch.setattr(batching, "load_for_resize", lambda sample, size, draft: real(sample, size, False))
    full = collate_train(samples, spec, rng=np.random.default_rng(0), noun_phrases=HEURISTIC)
    return fast, full, decoded


@pytest.mark.parametrize("kind", [DataKind.IMAGE_TEXT, DataKind.CLASSIFICATION])
def test_draft_decode_gives_the_same_shapes_and_close_values(kind, monkeypatch):
    sizes = [(1600, 1200), (1200, 1600), (768, 512)]
    samples = [_sample(kind, w, h) for w, h in sizes]
    spec = InputSpec(kind=kind, size=(320, 320), flip=True, concepts_per_image=1)
    fast, full, decoded = _both(samples, spec, monkeypatch)
    assert fast.images.shape == full.images.shape == (3, 3, 320, 320)
    assert fast.image_sizes == full.image_sizes == [(240, 320), (320, 240), (213, 320)]
    # the draft decodes at 1/4, 1/4 and 1/2 of the stored size, never below the 320-long target
    assert decoded == [(400, 300), (300, 400), (384, 256)]
    for i, (h, w) in enumerate(fast.image_sizes):
        diff = ((fast.images[i] - full.images[i])[:, :h, :w] * STD * 255).abs()
        assert float(diff.mean()) <= 2.0
        assert 10 * np.log10(255**2 / float((diff**2).mean())) >= 35.0
        assert not fast.images[i][:, h:, :].any() and not fast.images[i][:, :, w:].any()  # padding stays zero


def test_no_draft_when_the_jpeg_is_not_twice_the_target(monkeypatch):
    sample = _sample(DataKind.IMAGE_TEXT, 500, 375)
    spec = InputSpec(kind=DataKind.IMAGE_TEXT, size=(320, 320), flip=False)
    fast, full, decoded = _both([sample], spec, monkeypatch)
    assert decoded == [(500, 375)]
    assert torch.equal(fast.images, full.images)


def test_detection_is_decoded_at_full_size(monkeypatch):
    data = photo_like_jpeg(1600, 1200, 0)
    sample = Sample(
        kind=DataKind.DETECTION,
        source="t",
        record_id="d",
        image=ImageRef(data=data),
        concepts=(Concept("red box"),),
        boxes=[[10, 10, 200, 200]],
        labels=[0],
    )
    spec = InputSpec(kind=DataKind.DETECTION, size=(400, 240), flip=False, concepts_per_image=1)
    fast, _, decoded = _both([sample], spec, monkeypatch)
    assert decoded == [(1600, 1200)] and fast.image_sizes == [(240, 320)]
    np.testing.assert_allclose(fast.boxes[0].numpy(), [[2, 2, 40, 40]], rtol=1e-6)


def test_explicit_draft_callable_sees_the_stored_size():
    seen = []
    img = ImageRef(data=photo_like_jpeg(1600, 1200, 1)).open(draft=lambda w, h: seen.append((w, h)) or (200, 150))
    assert seen == [(1600, 1200)] and img.size == (200, 150)
    assert ImageRef(data=photo_like_jpeg(1600, 1200, 1)).open(draft=lambda w, h: None).size == (1600, 1200)


def test_to_tensor_is_bit_identical_to_the_float_formula():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
    want = (x - torch.tensor(batching.IMAGENET_MEAN)[:, None, None]) / STD
    got = batching.to_tensor(img)
    assert got.is_contiguous() and torch.equal(got, want)


class _PadInWorker(torch.utils.data.Dataset):
    def __init__(self, tensors, images):
        self.tensors, self.images = tensors, images

    def __len__(self):
        return 1

    def __getitem__(self, i):
        out = batching.pad_stack(self.tensors, 4, (10, 3))
        batch = batching.image_batch(self.images, 4, (10, 3))
        return out, out.is_shared(), batch, batch.is_shared()


def test_pad_stack_zero_pads_and_builds_worker_batches_in_shared_memory():
    tensors = [torch.randn(3, 5, 7), torch.randn(3, 9, 4)]
    want = torch.zeros(2, 3, 12, 8)
    want[0, :, :5, :7], want[1, :, :9, :4] = tensors
    assert torch.equal(batching.pad_stack(tensors, 4, (10, 3)), want)
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((5, 7), (9, 4), (12, 8))]
    normalised = batching.pad_stack([batching.to_tensor(im) for im in images], 4, (10, 3))
    assert torch.equal(batching.image_batch(images, 4, (10, 3)), normalised)  # normalised in place, same values
    loader = torch.utils.data.DataLoader(_PadInWorker(tensors, images), batch_size=None, num_workers=1)
    ((out, shared, batch, batch_shared),) = list(loader)
    assert shared and torch.equal(out, want)
    assert batch_shared and torch.equal(batch, normalised)


def test_batched_noun_phrases_equal_one_by_one():
    extractor = NounPhraseExtractor()
    captions = [
        "A man riding a horse on the beach at sunset.",
        "two dogs playing with a red ball in the park",
        "close-up of a cup of coffee on a wooden table",
        "two dogs playing with a red ball in the park",
        "x",
    ]
    parsed = extractor.batch(captions)
    assert [parsed.extract(c) for c in captions] == [extractor.extract(c) for c in captions]
    assert parsed.extract("a cat on a mat") == extractor.extract("a cat on a mat")  # not in the batch
    assert extractor.extract_many(captions) == [extractor.extract(c) for c in captions]
