"""The vocabulary split holds in the written files, and r/c/f matches counts recomputed from them."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter

import numpy as np

from detclip_bench.mini_world import CONCEPTS, frequency_of, load_vocabulary
from detclip_bench.mini_world.captions import _make_pairs
from detclip_bench.mini_world.lvis import lvis_name
from detclip_bench.mini_world.render import Difficulty
from detclip_bench.mini_world.vocabulary import concepts_in

BY_NAME = {c.name: c for c in CONCEPTS}
CAPTION_ONLY = {c.name for c in concepts_in("caption")}


def _load(root, rel):
    return json.loads((root / rel).read_text())


def _mentioned(text: str) -> set[str]:
    """Concept names (or plurals) that occur as whole words in ``text``."""
    low = text.lower()
    return {c.name for c in CONCEPTS if re.search(rf"\b({re.escape(c.name)}|{re.escape(c.plural)})\b", low)}


def _span_concept(caption: str, spans) -> set[str]:
    return set().union(*(_mentioned(caption[s:e]) for s, e in spans))


def _grounding_files(root):
    return [
        _load(root, f"goldg/mdetr_annotations/{f}")
        for f in ("final_mixed_train_no_coco.json", "final_flickr_separateGT_train.json")
    ]


def test_caption_only_concepts_are_never_boxed_in_training(world):
    root, _ = world
    o365 = _load(root, "o365/annotations/zhiyuan_objv2_train.json")
    o365_names = {c["name"].strip().split("/")[0].lower() for c in o365["categories"]}
    assert not o365_names & CAPTION_ONLY
    assert {c.name for c in concepts_in("detection")} == {
        c.name for c in CONCEPTS if c.o365_key in {k["name"] for k in o365["categories"]}
    }
    boxed_in_grounding = set()
    for doc in _grounding_files(root):
        captions = {im["id"]: im["caption"] for im in doc["images"]}
        for ann in doc["annotations"]:
            found = _span_concept(captions[ann["image_id"]], ann["tokens_positive"])
            assert len(found) == 1, (captions[ann["image_id"]], ann["tokens_positive"])
            boxed_in_grounding |= found
    assert not boxed_in_grounding & CAPTION_ONLY
    assert {c.name for c in concepts_in("grounding")} <= boxed_in_grounding


def test_caption_only_concepts_appear_in_captions_and_class_folders(world):
    root, _ = world
    with open(root / "cc/cc3m.tsv", newline="") as fh:
        captions = [r[0] for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    with open(root / "cc/cc12m.tsv", newline="") as fh:
        captions += [r[1] for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    mentions = Counter(n for cap in captions for n in _mentioned(cap))
    assert all(mentions[n] >= 2 for n in CAPTION_ONLY), mentions
    classes = {
        ln.split(" ", 1)[1].split(",")[0] for ln in (root / "imagenet/LOC_synset_mapping.txt").read_text().splitlines()
    }
    assert classes == CAPTION_ONLY


def test_lvis_eval_covers_every_group_and_rcf_matches_training_counts(world):
    root, _ = world
    val = _load(root, "lvis/lvis_v1_val.json")
    by_id = {c["id"]: c for c in val["categories"]}
    annotated = {by_id[a["category_id"]]["name"] for a in val["annotations"]}
    for group in ("detection", "grounding", "caption"):
        assert {lvis_name(c.name) for c in concepts_in(group)} & annotated, group
    # recompute per-concept training image counts straight from the training files
    images, instances, n_train = Counter(), Counter(), 0
    o365 = _load(root, "o365/annotations/zhiyuan_objv2_train.json")
    cat_name = {c["id"]: next(x.name for x in CONCEPTS if x.o365_key == c["name"]) for c in o365["categories"]}
    per_image = {im["id"]: [] for im in o365["images"]}
    for a in o365["annotations"]:
        per_image[a["image_id"]].append(cat_name[a["category_id"]])
    grounding_images: dict[str, list[str]] = {}
    for doc in _grounding_files(root):
        captions = {im["id"]: im for im in doc["images"]}
        for im in doc["images"]:
            grounding_images.setdefault(im["file_name"], [])
        seen_boxes = set()
        for a in doc["annotations"]:
            im = captions[a["image_id"]]
            key = (im["file_name"], tuple(a["bbox"]))
            if key not in seen_boxes:  # one physical box may back several entries
                seen_boxes.add(key)
                grounding_images[im["file_name"]] += list(_span_concept(im["caption"], a["tokens_positive"]))
    for names in [*per_image.values(), *grounding_images.values()]:
        n_train += 1
        instances.update(names)
        images.update(set(names))
    vocab = load_vocabulary(root)
    assert vocab.n_train_images == n_train
    for c in val["categories"]:
        name = c["name"].replace("_", " ")
        assert c["image_count"] == images[name], name
        assert c["instance_count"] == instances[name], name
        assert c["frequency"] == frequency_of(images[name], n_train)
        if name in CAPTION_ONLY:
            assert c["frequency"] == "r" and c["image_count"] == 0
    assert {c["frequency"] for c in val["categories"]} == {"r", "c", "f"}


def test_grounding_spans_point_at_the_phrase(world):
    root, _ = world
    mixed, flickr = _grounding_files(root)
    for doc in (mixed, flickr):
        captions = {im["id"]: im["caption"] for im in doc["images"]}
        for ann in doc["annotations"]:
            cap = captions[ann["image_id"]]
            for s, e in ann["tokens_positive"]:
                phrase = cap[s:e]
                assert phrase == phrase.strip() and phrase
                assert any(phrase.lower().endswith(w) for c in CONCEPTS for w in (c.name, c.plural)), phrase
    for im in flickr["images"]:
        assert im["caption"].endswith(" .") and im["tokens_negative"] == [[0, len(im["caption"])]]
        for spans in im["tokens_positive_eval"]:
            assert len(spans) == 1 and _mentioned(im["caption"][spans[0][0] : spans[0][1]])
    assert all(im["data_source"] == "vg" and im["dataset_name"] == "mixed" for im in mixed["images"])
    assert mixed["categories"] == []
    assert flickr["categories"] == [{"supercategory": "object", "id": 1, "name": "object"}]
    # a physical GQA image backs more than one entry somewhere, and some box has two spans
    assert len({im["file_name"] for im in mixed["images"]}) < len(mixed["images"])


def test_alt_text_mentions_some_never_all():
    pairs = _make_pairs(np.random.default_rng(5), 60, "cc3m", Difficulty())
    for p in pairs:
        said = _mentioned(p.caption)
        assert said and said < set(p.present), (p.caption, p.present)
    assert sum(bool(_mentioned(p.caption) & CAPTION_ONLY) for p in pairs) > 20
