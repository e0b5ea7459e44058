"""Grounding images get M concepts: their phrases plus dictionary negatives that are no variant of a phrase."""

import numpy as np
import pytest

from detclip_bench.schema import DataKind
from reference_model.detclipv2 import InputSpec, collate_train
from reference_model.detclipv2.concept_dictionary import ConceptDictionary, concept_variants
from tests.reference_model.conftest import det_sample

M = 24
NEAR = {  # variants of the positives "the red box" / "the green box": never negatives
    "red box": "a red rectangle",
    "red boxes": "several red rectangles",
    "green box": "a green rectangle",
    "box": "any four-sided container",
    "boxes": "containers",
    "crimson box": "a deep red rectangle",
}
FAR = {f"gadget {w}": f"a gadget of kind {w}" for w in "abcdefghijklmnopqrstuvwxyz"} | {
    "kettle": "a pot for boiling water",
    "zebra": "a striped horse",
    "violins": "bowed string instruments",
}


def _name(prompt: str) -> str:
    return prompt.split(", ", 1)[0]


def test_concept_variants_cover_case_articles_number_and_head():
    assert concept_variants("The Red_Dogs") == {"red dogs", "red dog", "dogs", "dog"}
    assert concept_variants("a man") == {"man"} and "man" in concept_variants("women") | concept_variants("men")
    assert concept_variants("boxes") & concept_variants("box")
    assert not concept_variants("glass") & concept_variants("grass")


@pytest.mark.parametrize("seed", range(8))
def test_each_grounding_image_gets_exactly_m_concepts_without_positive_variants(seed):
    d = ConceptDictionary({**NEAR, **FAR})
    spec = InputSpec(kind=DataKind.GROUNDING, size=(96, 64), concepts_per_image=M)
    batch = collate_train(
        [det_sample(seed, DataKind.GROUNDING)],
        spec,
        vocabulary=d.concepts(),
        rng=np.random.default_rng(seed),
        dictionary=d,
    )
    assert len(batch.concepts) == M  # 2 phrases + 22 negatives
    positives, negatives = batch.concepts[:2], batch.concepts[2:]
    assert all(p.startswith("the ") and _name(p) != p for p in positives)  # phrases, enriched by their head
    assert {_name(n) for n in negatives} <= set(FAR)  # nothing sharing "box" with a positive
    assert all(n == f"{_name(n)}, {FAR[_name(n)]}" for n in negatives)  # negatives carry definitions
    assert batch.labels[0].tolist() == [0, 1]


def test_two_images_each_get_m_and_detection_keeps_plain_name_exclusion():
    d = ConceptDictionary({**NEAR, **FAR})
    spec = InputSpec(kind=DataKind.GROUNDING, size=(96, 64), concepts_per_image=M)
    batch = collate_train(
        [det_sample(0, DataKind.GROUNDING), det_sample(1, DataKind.GROUNDING)],
        spec,
        vocabulary=d.concepts(),
        rng=np.random.default_rng(0),
        dictionary=d,
    )
    assert M <= len(batch.concepts) <= 2 * M  # de-duplicated across the batch
    assert not {_name(c) for c in batch.concepts} & set(NEAR)
    # detection negatives (a dataset's categories) only avoid the positives themselves: "Traffic Sign" stays a
    # negative of "Stop Sign"
    det = InputSpec(kind=DataKind.DETECTION, size=(96, 64), concepts_per_image=M)
    batch = collate_train([det_sample(0)], det, vocabulary=d.concepts(), rng=np.random.default_rng(0), dictionary=d)
    assert {_name(c) for c in batch.concepts} & (set(NEAR) - {"red box", "green box"})


def test_a_small_dictionary_gives_fewer_negatives_not_duplicates():
    d = ConceptDictionary({"kettle": "a pot", "box": "a container"})
    spec = InputSpec(kind=DataKind.GROUNDING, size=(96, 64), concepts_per_image=M)
    batch = collate_train(
        [det_sample(0, DataKind.GROUNDING)], spec, vocabulary=d.concepts(), rng=np.random.default_rng(0), dictionary=d
    )
    assert [_name(c) for c in batch.concepts[2:]] == ["kettle"]


def test_dictionary_concepts_and_layouts(tmp_path):
    d = ConceptDictionary({"The Kettle": "a pot", "zebra": "a horse", "empty": ""})
    assert [(c.name, c.definition) for c in d.concepts()] == [("kettle", "a pot"), ("zebra", "a horse")]
    assert d.concepts() is d.concepts() and d.enrich_all(d.concepts()) is d.concepts()
    assert d.can_sample_negatives
    lvis = tmp_path / "lvis.json"
    lvis.write_text('{"categories": [{"id": 1, "name": "bat", "def": "a club"}]}')
    vocab = tmp_path / "vocabulary.json"
    vocab.write_text('{"concepts": [{"name": "red box", "definition": "a red rectangle"}]}')
    assert ConceptDictionary.from_file(lvis).layout == "lvis"
    assert not ConceptDictionary.from_file(lvis).can_sample_negatives  # evaluation vocabularies: enrichment only
    assert not ConceptDictionary.from_file(vocab).can_sample_negatives


def test_lookup_reads_the_head_before_a_preposition_like_the_builder():
    d = ConceptDictionary({"man": "an adult male", "hat": "headwear", "cup of tea": "a drink"})
    assert d.lookup("the man in a hat") == "an adult male"  # not the hat's gloss
    assert d.lookup("cup of tea") == "a drink"  # a whole entry wins
    assert d.lookup("a tall hat") == "headwear"
