from __future__ import annotations

import json

import pytest

from detclip_bench.errors import DataError
from detclip_bench.mini_world import CONCEPTS, FrequencyRule, frequency_of, load_vocabulary, vocabulary_split
from detclip_bench.mini_world.odinw import ODINW13, class_looks
from detclip_bench.mini_world.render import COLOURS, SHAPES, TEXTURES
from detclip_bench.mini_world.vocabulary import GROUPS


def test_every_concept_has_a_distinct_look_and_real_words():
    signatures = [c.signature for c in CONCEPTS]
    assert len(set(signatures)) == len(signatures)
    names = [c.name for c in CONCEPTS]
    assert len(set(names)) == len(names)
    for c in CONCEPTS:
        assert c.shape in SHAPES and c.texture in TEXTURES and c.colour in COLOURS and c.secondary in COLOURS
        assert len(c.definition.split()) >= 4 and c.group in GROUPS
    assert 30 <= len(CONCEPTS) <= 40


def test_split_sizes_and_detection_keys():
    split = vocabulary_split()
    assert [len(split[g]) for g in GROUPS] == [16, 8, 8]
    assert split["lvis_eval"] == [c.name for c in CONCEPTS]
    keys = [c.o365_key for c in CONCEPTS if c.group == "detection"]
    assert all(keys) and not any(c.o365_key for c in CONCEPTS if c.group != "detection")
    # real-style quirks in the raw O365 names: trailing space, misspelling, slash synonym
    assert any(k.endswith(" ") for k in keys) and "Donnut" in keys and any("/" in k for k in keys)


@pytest.mark.parametrize(
    ("count", "n_train", "expected"),
    [(0, 1000, "r"), (10, 1000, "r"), (11, 1000, "c"), (100, 1000, "c"), (101, 1000, "f"), (0, 10, "r"), (1, 10, "c")],
)
def test_frequency_rule_boundaries(count, n_train, expected):
    assert FrequencyRule().thresholds(1000) == (10, 100)
    assert frequency_of(count, n_train) == expected


def test_odinw_members_have_distinct_class_looks():
    assert len(ODINW13) == 13
    for m in ODINW13:
        looks = class_looks(m)
        assert len(set(looks)) == len(m.classes)
        assert 1 <= len(m.classes) <= 20


def test_load_vocabulary_round_trip(world):
    root, manifest = world
    vocab = load_vocabulary(root)
    assert vocab.split() == {k: v for k, v in manifest["vocabulary_split"].items() if k != "odinw"}
    assert set(vocab.odinw) == {m.name for m in ODINW13}
    entry = vocab.concepts[0]
    assert entry.prompt() == f"{entry.name}, {entry.definition}"


def test_load_vocabulary_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"vocabulary\.json"):
        load_vocabulary(tmp_path)
    (tmp_path / "vocabulary.json").write_text(json.dumps({"concepts": [{"bogus": 1}]}))
    with pytest.raises(DataError, match="malformed"):
        load_vocabulary(tmp_path)
