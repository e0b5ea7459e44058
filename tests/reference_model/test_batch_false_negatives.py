"""No image takes another surface form of its own positive as a negative, anywhere in the global batch.

Two ranks are simulated in one process (the concept gather is patched to return both ranks' lists):
rank 0's image shows "a dog" and "the man in a blue shirt", rank 1's shows "dogs" and samples "men"
as one of its negatives. Without the batch-level mask, rank 0's anchors would be pushed down for
"dogs" (rank 1's positive) and "men" (rank 1's negative, the plural of rank 0's head noun). The phrase rules behind it are one module
(:mod:`detclip_bench.phrases`), checked on the real Objects365 names and GoldG-style phrases.
"""

from __future__ import annotations

import ast
from dataclasses import replace

import numpy as np
import pytest
import torch

from detclip_bench.datasets.coco import clean_o365_name
from detclip_bench.dictionary import normalize_phrase
from detclip_bench.phrases import clean_phrase, phrase_variants
from detclip_bench.schema import Concept, DataKind
from reference_model.detclipv2 import InputSpec, collate_train
from reference_model.detclipv2 import distributed as dist_helpers
from reference_model.detclipv2.concept_dictionary import ConceptDictionary, concept_variants
from reference_model.detclipv2.noun_phrases import caption_concepts
from tests.reference_model.conftest import det_sample

# ------------------------------------------------------------------ one set of phrase rules

GOLDG_PHRASES = {  # as MDETR's GoldG jsons spell box phrases (Flickr30k / VG / GQA style) → head phrase
    "the man in a blue shirt": "man",
    "A young boy": "young boy",
    "two dogs": "dogs",
    "Six chairs": "chairs",
    "seven orange cones": "orange cones",
    "ten people": "people",
    "his left hand": "left hand",
    "a woman's purse": "woman's purse",
    "the T-shirt,": "t-shirt",
    "a cup of coffee": "cup",
    '"the" red_umbrella.': "red umbrella",
    "several small boats near the shore": "small boats",
}


def test_writer_reader_and_caption_cleaning_agree_on_goldg_style_phrases():
    heads = {p: normalize_phrase(p) for p in GOLDG_PHRASES}
    assert heads == GOLDG_PHRASES
    # the reader finds every phrase through the key the writer would have stored for it
    d = ConceptDictionary({head: f"definition of {head}" for head in GOLDG_PHRASES.values()})
    for phrase, head in GOLDG_PHRASES.items():
        assert d.lookup(phrase) == f"definition of {head}", phrase
    # caption noun phrases are cleaned by the same rules (number words, possessives, punctuation)

    class Chunks:
        def extract(self, caption):
            return ["Six chairs", "the T-shirt,", "his left hand"]

    assert caption_concepts("", Chunks())[:3] == ["chairs", "t-shirt", "left hand"]
    assert clean_phrase("Six chairs") == normalize_phrase("Six chairs") == "chairs"


def _o365_names() -> list[str]:
    from tests.reality.artefacts import package_file

    tree = ast.parse(package_file("mmdet", "datasets/objects365.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Objects365V2Dataset":
            for d in ast.walk(node):
                if isinstance(d, ast.Dict):
                    for k, v in zip(d.keys, d.values, strict=True):
                        if isinstance(k, ast.Constant) and k.value == "classes":
                            return [part for raw in ast.literal_eval(v) for part in clean_o365_name(raw)]
    raise AssertionError("no Objects365V2Dataset classes in mmdet")


def test_real_o365_names_round_trip_from_the_dictionary_writer_to_its_reader():
    names = _o365_names()
    assert len(names) >= 365
    written = {normalize_phrase(n): f"gloss {i}" for i, n in enumerate(names)}  # what make-dictionary keys
    d = ConceptDictionary(written)
    for name in names:
        key = normalize_phrase(name)
        assert key and d.lookup(name) == written[key], name
        assert key in concept_variants(name) or key == clean_phrase(name)


def test_variants_take_the_head_noun_where_lookup_does():
    assert phrase_variants("the man in a blue shirt") >= {"man", "man in a blue shirt"}
    assert concept_variants("men") & concept_variants("the man in a blue shirt")  # plural of the head noun
    assert not concept_variants("shirt") & concept_variants("the man in a blue shirt")  # not the object of "in"
    assert concept_variants("The Red_Dogs") == {"red dogs", "red dog", "dogs", "dog"}
    assert not concept_variants("glass") & concept_variants("grass")


# ------------------------------------------------------------------ the batch-level mask on two ranks

VOCAB = tuple(
    Concept(name=n, definition=f"about {n}") for n in ("men", "the dog", "kettle", "zebra", "violin", "tractor")
)


def _grounding(i: int, phrases: tuple[str, str]):
    s = det_sample(i, DataKind.GROUNDING)
    return replace(s, concepts=tuple(Concept(name=p) for p in phrases), caption=" and ".join(phrases))


def _rank_batches():
    spec = InputSpec(kind=DataKind.GROUNDING, size=(96, 64), flip=False, concepts_per_image=8)
    rank0 = collate_train(
        [_grounding(0, ("a dog", "the man in a blue shirt"))], spec, vocabulary=VOCAB, rng=np.random.default_rng(0)
    )
    rank1 = collate_train([_grounding(1, ("dogs", "a red kite"))], spec, vocabulary=VOCAB, rng=np.random.default_rng(0))
    return rank0, rank1


def test_per_image_sampling_alone_leaves_the_other_ranks_variants_in_the_union():
    rank0, rank1 = _rank_batches()
    assert not {"men", "the dog"} & set(rank0.concept_names)  # its own sampler excluded them
    assert {"dogs", "men"} <= set(rank1.concept_names)  # but rank 1 brings its positive and a negative


def test_two_ranks_sharing_a_concept_under_other_forms_mark_no_positive_or_variant_negative(tiny_model, monkeypatch):
    rank0, rank1 = _rank_batches()
    world = [list(zip(b.concepts, b.concept_names, strict=True)) for b in (rank0, rank1)]
    monkeypatch.setattr(dist_helpers, "all_gather_object", lambda obj: world)
    seen = {}
    original = tiny_model.head.compute_loss

    def spy(outputs, logits, anchors, boxes, labels, *args, **kwargs):
        seen.update(labels=labels, mask=kwargs["negative_mask"], texts=kwargs["texts"])
        return original(outputs, logits, anchors, boxes, labels, *args, **kwargs)

    monkeypatch.setattr(tiny_model.head, "compute_loss", spy)
    gathered = [name for part in world for _, name in part]
    gathered = list(dict.fromkeys(gathered))  # names are unique here, as the prompts are
    for batch in (rank0, rank1):
        assert torch.isfinite(tiny_model(batch)["loss"])
        assert seen["texts"].shape[0] == len(gathered)  # every rank scores the global list
        mask = seen["mask"]
        for b, lab in enumerate(seen["labels"]):
            positives = {gathered[m] for m in lab.tolist()}
            forms = set().union(*(phrase_variants(p) for p in positives))
            for m, name in enumerate(gathered):
                if name not in positives and phrase_variants(name) & forms:
                    assert not mask[b, m], (positives, name)  # a variant of a positive: never a negative
                if not phrase_variants(name) & forms:
                    assert mask[b, m], (positives, name)  # everything else still is
    # the reproduced cases, by name: rank 0's "a dog" and "the man in a blue shirt"
    tiny_model(rank0)
    hidden = {gathered[m] for m in range(len(gathered)) if not seen["mask"][0, m]}
    assert {"dogs", "men"} <= hidden
    assert not hidden & {"kettle", "zebra", "a red kite"}


def test_detection_masks_only_the_same_name_in_another_prompt():
    """Exhaustive detection labels keep other categories as negatives, even ones sharing a head noun."""
    from reference_model.detclipv2.model import DetCLIPv2

    spec = InputSpec(kind=DataKind.DETECTION, size=(96, 64), flip=False, concepts_per_image=2)
    s = replace(det_sample(0), concepts=(Concept("Glasses"), Concept("Dog")))
    batch = collate_train([s], spec, vocabulary=(), rng=np.random.default_rng(0))
    concepts = [*batch.concepts, "wine glass", "dog, a domestic animal"]
    names = [*batch.concept_names, "wine glass", "dog"]
    mask = DetCLIPv2._negative_mask(batch, concepts, names, batch.labels, variants=False)
    assert mask.tolist() == [[True, True, True, False]]


@pytest.mark.parametrize("variants", [True, False])
def test_no_mask_without_a_collision(variants):
    from reference_model.detclipv2.model import DetCLIPv2

    rank0, _ = _rank_batches()
    assert DetCLIPv2._negative_mask(rank0, rank0.concepts, rank0.concept_names, rank0.labels, variants=variants) is None
