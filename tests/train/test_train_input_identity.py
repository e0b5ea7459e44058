"""The image-text training input path gives exactly what a plain per-sample reference gives: every batch pixel,
image size, concept name and caption concept, bit for bit (docs/training_input.md, "Draft decoding").

The reference is written out here step by step with PIL, numpy and torch, each sample alone: open the JPEG,
ask its draft for the keep-ratio target, convert to RGB, bilinear resize, flip when the batch's generator says
so, ``(x / 255 - mean) / std`` in float32, zero-pad to the square; concepts from each caption parsed alone.
The trainer's path (tar reader, sidecar noun chunks, draft decoding, batch assembly) may be optimised in any
way that keeps these equal.
"""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detclip_bench.cli.main import main
from detclip_bench.datasets.webdataset_tars import Img2DatasetTars
from detclip_bench.schema import DataKind, Sample
from reference_model.detclipv2 import InputSpec, collate_train
from reference_model.detclipv2.batching import IMAGENET_MEAN, IMAGENET_STD
from reference_model.detclipv2.concept_dictionary import ConceptDictionary
from reference_model.detclipv2.noun_phrases import caption_concepts
from reference_model.train.config import DataSourceConfig
from reference_model.train.loader import DetCLIPv2Collator, HybridLoader
from reference_model.train.sampler import HybridSampler
from tests.datasets.writers import wds_shard
from tests.reference_model.test_train_input import photo_like_jpeg
from tests.train.test_noun_chunk_sidecars import captions

SIZE = 320
MEAN = torch.tensor(IMAGENET_MEAN)[:, None, None]
STD = torch.tensor(IMAGENET_STD)[:, None, None]


def _encode(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def images() -> list[bytes]:
    """JPEGs that take every draft scale (1/4, 1/2, none) in both orientations, and the conversions: greyscale,
    CMYK, progressive, 4:4:4, an odd size, and a PNG stored as ``.jpg`` (no draft)."""
    photo = Image.open(io.BytesIO(photo_like_jpeg(1000, 700, 3)))
    return [
        photo_like_jpeg(1600, 1200, 0),
        photo_like_jpeg(1200, 1600, 1),
        photo_like_jpeg(768, 512, 2),
        photo_like_jpeg(500, 375, 3),
        _encode(photo.convert("L"), quality=85),
        _encode(photo.convert("CMYK"), quality=90),
        _encode(photo, quality=80, progressive=True),
        _encode(photo, quality=95, subsampling=0),
        photo_like_jpeg(1283, 641, 4),
        _encode(photo.resize((700, 490)), "PNG"),
    ]


def write_stream(root: Path, per_shard: int = 6, shards: int = 2) -> list[str]:
    blobs, texts = images(), captions(per_shard * shards)
    for s in range(shards):
        wds_shard(
            root / f"{s:05d}.tar",
            [
                (f"{s:05d}{i:04d}", blobs[(s * per_shard + i) % len(blobs)], texts[s * per_shard + i])
                for i in range(per_shard)
            ],
        )
        (root / f"{s:05d}_stats.json").write_text(json.dumps({"count": per_shard, "successes": per_shard}))
    return texts


def reference_image(data: bytes, flip: bool) -> torch.Tensor:
    """One sample's normalised (3, h, w) image, the plain way."""
    img = Image.open(io.BytesIO(data))
    w0, h0 = img.size
    scale = min(SIZE / min(w0, h0), SIZE / max(w0, h0))
    w, h = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    if img.format == "JPEG":
        img.draft("RGB", (w, h))
    img = img.convert("RGB").resize((w, h), Image.BILINEAR)
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
    return (x - MEAN) / STD


def reference_batch(samples: list[Sample], flips: list[bool], extractor, dictionary) -> dict:
    """The batch tensor, sizes, concepts and caption concepts built per sample, one caption parsed at a time."""
    pixels = [reference_image(s.image.data, f) for s, f in zip(samples, flips, strict=True)]
    images = torch.zeros(len(samples), 3, SIZE, SIZE)
    for i, x in enumerate(pixels):
        images[i, :, : x.shape[1], : x.shape[2]] = x
    concepts: list[str] = []
    caption_ids = []
    for s in samples:
        prompts = [dictionary.phrase_prompt(p) for p in caption_concepts(s.caption, extractor, dictionary)]
        ids = []
        for p in [*prompts, s.caption]:
            if p not in concepts:
                concepts.append(p)
            ids.append(concepts.index(p))
        caption_ids.append(list(dict.fromkeys(ids)))
    return {
        "images": images,
        "image_sizes": [(x.shape[1], x.shape[2]) for x in pixels],
        "concepts": concepts,
        "concept_names": concepts,
        "caption_concepts": caption_ids,
    }


def as_dict(batch) -> dict:
    return {
        "images": batch.images,
        "image_sizes": batch.image_sizes,
        "concepts": batch.concepts,
        "concept_names": batch.concept_names,
        "caption_concepts": batch.caption_concepts,
    }


def assert_same(got: dict, want: dict) -> None:
    assert got["images"].dtype == torch.float32 and got["images"].shape == want["images"].shape
    assert torch.equal(got["images"], want["images"])
    assert {k: v for k, v in got.items() if k != "images"} == {k: v for k, v in want.items() if k != "images"}


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wds")
    write_stream(root)
    assert main(["data", "parse-captions", str(root), "--out", str(root / "chunks")]) == 0
    return root


def test_the_loader_with_sidecars_equals_the_per_sample_reference(stream, extractor, dictionary_file):
    """HybridLoader → sidecar chunks → DetCLIPv2Collator at 320², against the reference, every batch."""
    chunks = str(stream / "chunks")
    source = DataSourceConfig(
        "cc", str(stream), "img2dataset-wds", DataKind.IMAGE_TEXT, 4, (SIZE, SIZE), flip=False, noun_chunks=chunks
    )
    dataset = Img2DatasetTars(stream)
    sampler = HybridSampler([12], [source.batch_size], seed=0)
    loader = HybridLoader([dataset], [source], sampler, collate=DetCLIPv2Collator(str(dictionary_file)))
    it = iter(loader)
    batches = [b.micro[0] for b in itertools.islice(it, len(sampler))]
    it.close()
    by_key = {s.record_id: s for shard in dataset.shards() for s in dataset.iter_shard(shard)}
    assert sorted(k for b in batches for k in b.record_ids) == sorted(by_key)
    dictionary = ConceptDictionary.from_file(dictionary_file)
    for batch in batches:
        samples = [by_key[k] for k in batch.record_ids]
        assert_same(as_dict(batch), reference_batch(samples, [False] * len(samples), extractor, dictionary))


def test_collate_with_flips_equals_the_per_sample_reference(stream, extractor, dictionary_file):
    """Flips come from the batch's generator, one draw per image (no multi-scale for image-text)."""
    dataset = Img2DatasetTars(stream)
    samples = [s for shard in dataset.shards() for s in dataset.iter_shard(shard)]
    dictionary = ConceptDictionary.from_file(dictionary_file)
    spec = InputSpec(kind=DataKind.IMAGE_TEXT, size=(SIZE, SIZE), flip=True)
    got = collate_train(samples, spec, rng=np.random.default_rng(5), noun_phrases=extractor, dictionary=dictionary)
    draws = np.random.default_rng(5)
    flips = [bool(draws.random() < 0.5) for _ in samples]
    assert any(flips) and not all(flips)
    assert_same(as_dict(got), reference_batch(samples, flips, extractor, dictionary))
