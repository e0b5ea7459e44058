"""Concept enrichment: definitions from a dictionary reach every training prompt kind."""

import dataclasses
import json

import numpy as np
import pytest

from detclip_bench.errors import DataError
from detclip_bench.schema import Concept, DataKind
from reference_model.detclipv2 import InputSpec, collate_train
from reference_model.detclipv2.concept_dictionary import ConceptDictionary
from tests.reference_model.conftest import caption_sample, det_sample

DEFS = {"red box": "a red rectangle", "blue box": "a blue rectangle", "box": "any four-sided thing"}


class FixedPhrases:
    def extract(self, caption: str) -> list[str]:
        return ["a red box", "grey background"]


def test_lookup_prefers_the_whole_phrase_then_its_longest_known_suffix():
    d = ConceptDictionary(DEFS)
    assert d.lookup("Red_Box") == "a red rectangle"
    assert d.lookup("the shiny red box") == "a red rectangle"  # head noun phrase wins over "box"
    assert d.lookup("a green box") == "any four-sided thing"
    assert d.lookup("grey background") == ""
    assert d.phrase_prompt("a shiny red box") == "a shiny red box, a red rectangle"
    assert d.phrase_prompt("grey background") == "grey background"


def test_enrich_keeps_existing_definitions():
    d = ConceptDictionary(DEFS)
    assert d.enrich(Concept(name="red box")).prompt() == "red box, a red rectangle"
    assert d.enrich(Concept(name="red box", definition="mine")).definition == "mine"


@pytest.mark.parametrize("layout", ["mini_world", "lvis", "flat"])
def test_reads_the_three_file_layouts(tmp_path, layout):
    doc = {
        "mini_world": {"concepts": [{"name": "red box", "definition": "a red rectangle", "synonyms": ["crimson box"]}]},
        "lvis": {"categories": [{"id": 1, "name": "red_box", "def": "a red rectangle", "synonyms": ["crimson_box"]}]},
        "flat": {"red box": "a red rectangle", "crimson box": "a red rectangle"},
    }[layout]
    path = tmp_path / "dict.json"
    path.write_text(json.dumps(doc))
    d = ConceptDictionary.from_file(path)
    assert d.lookup("red box") == d.lookup("crimson box") == "a red rectangle"


def test_malformed_dictionary_names_the_file_and_entry(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"concepts": [{"definition": "no name"}]}))
    with pytest.raises(DataError, match=r"bad\.json.*entry 0"):
        ConceptDictionary.from_file(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(DataError, match="not a concept dictionary"):
        ConceptDictionary.from_file(path)


def test_collate_enriches_positives_negatives_and_caption_phrases():
    d = ConceptDictionary(DEFS)
    rng = np.random.default_rng(0)
    bare = dataclasses.replace(det_sample(0), concepts=(Concept(name="red box"), Concept(name="green box")))
    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64), concepts_per_image=3)
    batch = collate_train([bare], spec, vocabulary=(Concept(name="blue box"),), rng=rng, dictionary=d)
    assert batch.concepts == [
        "red box, a red rectangle",
        "green box, any four-sided thing",
        "blue box, a blue rectangle",
    ]
    it = collate_train(
        [caption_sample(0)],
        InputSpec(kind=DataKind.IMAGE_TEXT, size=(64, 64)),
        rng=rng,
        noun_phrases=FixedPhrases(),
        dictionary=d,
    )
    # "a red box" is cleaned and known; "grey background" is about the picture, not in it (META_NOUNS)
    assert it.concepts == ["red box, a red rectangle", caption_sample(0).caption]  # the caption stays verbatim
