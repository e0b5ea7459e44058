"""Captions parsed once: a shard's noun-chunk sidecar (``data parse-captions``) and the batched parse ahead of
collation give exactly the phrases and batch concepts of parsing each caption alone; a stale sidecar is refused
(logged, captions parsed again). docs/training_input.md."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import orjson
import pytest

from detclip_bench.cli.main import main
from detclip_bench.datasets import noun_chunks
from detclip_bench.datasets.noun_chunks import NOUN_CHUNKS_META, open_sidecar, sidecar_path
from detclip_bench.datasets.webdataset_tars import Img2DatasetTars
from detclip_bench.errors import DataError
from detclip_bench.schema import DataKind
from reference_model.detclipv2 import InputSpec, collate_train
from reference_model.detclipv2.concept_dictionary import ConceptDictionary
from reference_model.detclipv2.noun_phrases import NounPhraseExtractor, caption_concepts
from reference_model.train.config import DataSourceConfig
from reference_model.train.loader import DetCLIPv2Collator, HybridLoader
from reference_model.train.noun_chunks import with_noun_chunks
from reference_model.train.sampler import HybridSampler
from tests.datasets.writers import jpeg_bytes, wds_shard

TRICKY = [
    "macro shot of a grey hex nut and a yellow sheriff badge",  # spaCy misses the badge; the heuristic adds it
    "Ginger kitten inspecting a toad in a flower pot, white background",
    "stock photo - red apple | free download",  # alt-text separators and meta phrases
    "It is what it is.",  # pronoun-only chunks
    "A man and his dog have fun with man's best friend.",
    "Dog, dog and DOG",
    "Café au lait — a croissant on a marble counter",
    "2 cups of coffee & the Eiffel Tower at night!!",
    "x",
]
ADJECTIVES = ("red", "small", "wooden", "old", "bright", "rusty", "grey")
NOUNS = ("dog", "table", "car", "house", "tree", "beach", "street", "cup", "nut", "badge")


def captions(n: int) -> list[str]:
    """The tricky captions, repeats of some, and generated ones."""
    rng = np.random.default_rng(0)
    made = [
        f"a {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} next to the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        f" in photo {i}"
        for i in range(n - len(TRICKY) - 2)
    ]
    return [*TRICKY, *made, TRICKY[0], made[0]]  # a caption seen twice gets the same chunks


def write_stream(root: Path, per_shard: int = 12, shards: int = 2) -> list[str]:
    texts = captions(per_shard * shards)
    for s in range(shards):
        items = [
            (f"{s:05d}{i:04d}", jpeg_bytes(40, 30, (20 * i, 40 * s, 90)), texts[s * per_shard + i])
            for i in range(per_shard)
        ]
        wds_shard(root / f"{s:05d}.tar", items)
        (root / f"{s:05d}_stats.json").write_text(json.dumps({"count": per_shard, "successes": per_shard}))
    return texts


def pairs(folder: Path) -> list:
    ds = Img2DatasetTars(folder)
    return [(shard, sample) for shard in ds.shards() for sample in ds.iter_shard(shard)]


@pytest.fixture(scope="module")
def dictionary(dictionary_file) -> ConceptDictionary:
    return ConceptDictionary.from_file(dictionary_file)


def parse_captions(*argv: str) -> int:
    return main(["data", "parse-captions", *argv])


def forbid_parsing(monkeypatch) -> None:
    """Any spaCy parse from here on fails the test: every caption must come from a sidecar."""

    def refuse(*args, **kw):
        raise AssertionError("parsed although a current sidecar holds these captions")

    monkeypatch.setattr(NounPhraseExtractor, "noun_chunks_many", refuse)
    monkeypatch.setattr(NounPhraseExtractor, "extract", refuse)


def phrases_from(samples, extractor) -> list[list[str]]:
    """Each sample's phrases as the collator's extractor answers from the chunks attached ahead."""
    return [
        extractor.batch([s.caption], chunks={s.caption: s.meta[NOUN_CHUNKS_META]}).extract(s.caption) for s in samples
    ]


def concepts_from(samples, extractor, dictionary) -> list[list[str]]:
    """What the collator derives: caption_concepts through ``batch`` with the chunks attached ahead."""
    ahead = {s.caption: s.meta[NOUN_CHUNKS_META] for s in samples}
    parsed = extractor.batch([s.caption for s in samples], chunks=ahead)
    return [caption_concepts(s.caption, parsed, dictionary) for s in samples]


@pytest.mark.parametrize("out", [False, True], ids=["beside-shards", "out-folder"])
def test_sidecar_and_batched_parsing_equal_per_caption_parsing(tmp_path, extractor, dictionary, monkeypatch, out):
    texts = write_stream(tmp_path / "wds")
    want_phrases = [extractor.extract(t) for t in texts]  # one nlp(caption) each
    want = [caption_concepts(t, extractor, dictionary) for t in texts]
    assert "yellow sheriff badge" in want[0] and "yellow sheriff badge" not in want_phrases[0]  # derived, not parsed

    # fallback, no sidecar: one nlp.pipe per block read ahead (a block of 5 splits shards and the repeats)
    got = list(with_noun_chunks(pairs(tmp_path / "wds"), extractor, block=5))
    assert [s.caption for s in got] == texts
    assert phrases_from(got, extractor) == want_phrases
    assert concepts_from(got, extractor, dictionary) == want

    folder = tmp_path / "chunks" if out else None
    assert parse_captions(str(tmp_path / "wds"), *(["--out", str(folder)] if out else [])) == 0
    for shard in Img2DatasetTars(tmp_path / "wds").shards():
        assert sidecar_path(shard, folder).is_file() and not (out and sidecar_path(shard).exists())
    with monkeypatch.context() as m:
        forbid_parsing(m)
        from_sidecar = list(with_noun_chunks(pairs(tmp_path / "wds"), extractor, str(folder or "")))
    assert [s.meta[NOUN_CHUNKS_META] for s in from_sidecar] == [s.meta[NOUN_CHUNKS_META] for s in got]
    assert concepts_from(from_sidecar, extractor, dictionary) == want


def test_the_collator_builds_the_same_batch_from_sidecar_chunks(tmp_path, extractor, dictionary_file, monkeypatch):
    """The trainer's own path, HybridLoader → prepare_records (sidecar) → DetCLIPv2Collator, against
    collate_train with each caption parsed alone."""
    texts = write_stream(tmp_path / "wds", per_shard=8)
    assert parse_captions(str(tmp_path / "wds")) == 0
    source = DataSourceConfig(
        "cc", str(tmp_path / "wds"), "img2dataset-wds", DataKind.IMAGE_TEXT, 8, (64, 64), flip=False
    )
    sampler = HybridSampler([len(texts)], [source.batch_size], seed=0)
    collate = DetCLIPv2Collator(concept_dictionary=str(dictionary_file))
    loader = HybridLoader([Img2DatasetTars(tmp_path / "wds")], [source], sampler, collate=collate)
    with monkeypatch.context() as m:
        forbid_parsing(m)
        it = iter(loader)
        batches = [b.micro[0] for b in itertools.islice(it, len(sampler))]
        it.close()
    by_key = {s.record_id: s for _, s in pairs(tmp_path / "wds")}
    spec = InputSpec(kind=DataKind.IMAGE_TEXT, size=(64, 64), flip=False)
    dictionary = ConceptDictionary.from_file(dictionary_file)
    assert sorted(k for b in batches for k in b.record_ids) == sorted(by_key)
    for batch in batches:
        samples = [by_key[k] for k in batch.record_ids]
        want = collate_train(samples, spec, rng=np.random.default_rng(0), noun_phrases=extractor, dictionary=dictionary)
        assert (batch.concept_names, batch.caption_concepts) == (want.concept_names, want.caption_concepts)


def test_a_stale_or_mismatched_sidecar_is_refused_and_its_captions_parsed(tmp_path, extractor, caplog):
    texts = write_stream(tmp_path / "wds")
    want = [extractor.extract(t) for t in texts]
    assert parse_captions(str(tmp_path / "wds")) == 0
    shard0, _ = Img2DatasetTars(tmp_path / "wds").shards()
    assert open_sidecar(shard0, extractor.identity) is not None

    def phrases() -> list[list[str]]:
        return phrases_from(with_noun_chunks(pairs(tmp_path / "wds"), extractor, block=7), extractor)

    path = sidecar_path(shard0)
    lines = path.read_bytes().splitlines()
    header = orjson.loads(lines[0])
    for change in ({"model_version": "0.0.1"}, {"spacy": "2.0.0"}, {"pipes": ["tok2vec"]}, {"shard": "00009.tar"}):
        path.write_bytes(b"\n".join([orjson.dumps({**header, **change}), *lines[1:]]) + b"\n")
        with caplog.at_level(logging.DEBUG, logger="detclip_bench.datasets.noun_chunks"):
            caplog.clear()
            assert open_sidecar(shard0, extractor.identity) is None
        assert any("not used" in r.getMessage() for r in caplog.records), change
    path.write_bytes(b'{"format": 1, "model"\n')  # garbled
    assert open_sidecar(shard0, extractor.identity) is None
    assert phrases() == want  # shard 0 parsed, shard 1 from its sidecar

    # the shard rewritten under the same keys: the changed caption's entry no longer matches, and is parsed
    assert parse_captions(str(tmp_path / "wds")) == 0
    changed = [*texts[:12]]
    changed[3] = "a purple elephant on a tiny bicycle"
    wds_shard(Path(shard0), [(f"{0:05d}{i:04d}", jpeg_bytes(40, 30), changed[i]) for i in range(12)])
    with caplog.at_level(logging.WARNING, logger="detclip_bench.train"):
        caplog.clear()
        got = phrases()
    assert got == [extractor.extract(t) for t in [*changed, *texts[12:]]]
    assert got[3] == ["purple elephant", "tiny bicycle"]
    assert any("no entry for record '000000003'" in r.getMessage() for r in caplog.records)


def test_parse_captions_refuses_what_it_cannot_do(tmp_path, capsys, monkeypatch):
    write_stream(tmp_path / "wds")
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    assert parse_captions(str(coco), "--format", "coco") == 1
    assert "not an image-text stream" in capsys.readouterr().err

    def read_only(path):  # what a read-only shard folder does (chmod would not stop root)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(noun_chunks, "atomic_path", read_only)
    assert parse_captions(str(tmp_path / "wds")) == 1
    assert "--out DIR" in capsys.readouterr().err


def test_shards_in_object_storage_keep_their_sidecars_in_a_local_folder(tmp_path, extractor):
    url = "s3://bucket/cc15m/00042.tar"
    assert sidecar_path(url, tmp_path) == tmp_path / "00042.tar.noun-chunks.jsonl"
    with pytest.raises(DataError, match="--out DIR"):
        sidecar_path(url)
    assert open_sidecar(url, extractor.identity) is None  # nothing looked for beside a URL
