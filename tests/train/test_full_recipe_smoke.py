"""Smoke run of the FULL pre-training recipe through ``detclip-bench train``: the paper's code path, tiny sizes.

The full Swin-T recipe (Table 1) is run as a lab would launch it, on data in the real formats (the
mini world's O365 json, MDETR GoldG jsons, img2dataset webdataset shards) under one data root with
a ``concept_dictionary.json``, with its pretrained starts read offline from a Hugging Face cache
holding tiny stand-ins. Only sizes change (``--set``): tiny Swin/CLIP shapes, small images, one step
per source. The run log must show where the weights came from, M = 150 (detection) and 100
(grounding) concepts per image with definitions, and the contrastive loss computed over the
gathered image-text batch.
"""

from __future__ import annotations

import json
import logging

import pytest

from detclip_bench.cli.main import main
from detclip_bench.mini_world import generate

from ..hub_cache import TINY_SWIN, fill_hub, make_offline_hub

EXTRA_CATEGORIES = 200  # real O365 has 365 categories; the mini world's 16 cannot give M = 150


def _data_root(tmp_path):
    root = tmp_path / "data"
    generate(root, scale=0.1, seed=3)
    ann = root / "o365" / "annotations" / "zhiyuan_objv2_train.json"
    data = json.loads(ann.read_text())
    top = max(c["id"] for c in data["categories"])
    data["categories"] += [
        {"id": top + 1 + i, "name": f"Thing{i}", "supercategory": "misc"} for i in range(EXTRA_CATEGORIES)
    ]
    ann.write_text(json.dumps(data))
    # the flat {name: definition} layout that `data make-dictionary` writes (the only one negatives come from)
    vocab = json.loads((root / "vocabulary.json").read_text())["concepts"]
    dictionary = {c["name"]: c["definition"] for c in vocab}
    dictionary.update({f"thing{i}": f"an object of kind number {i}" for i in range(EXTRA_CATEGORIES)})
    (root / "concept_dictionary.json").write_text(json.dumps(dictionary))
    return root


@pytest.mark.slow
def test_full_recipe_runs_with_pretrained_starts_negatives_definitions_and_gathered_contrastive(
    tmp_path, monkeypatch, caplog
):
    hub = fill_hub(make_offline_hub(tmp_path, monkeypatch), tmp_path)
    root = _data_root(tmp_path)
    out = tmp_path / "run"
    sets = [
        f"data.{name}.{field}={value}"
        for name in ("o365", "goldg", "goldg-flickr")
        for field, value in (("size", "(320,192)"), ("multiscale_short", "(192,)"), ("batch_size", 2))
    ]
    sets += [f"data.{name}.steps_per_epoch=1" for name in ("o365", "goldg", "goldg-flickr", "cc15m")]
    sets += [
        "data.cc15m.path=cc/wds",
        "data.cc15m.batch_size=4",
        "data.cc15m.size=(128,128)",
        "schedule.epochs=1",
        "schedule.warmup_iters=2",
        f"model.backbone_kwargs={TINY_SWIN!r}",
        "amp=false",
        "ckpt_every=0",
    ]
    caplog.set_level(logging.INFO, logger="detclip_bench")
    argv = [
        "train",
        "--recipe",
        "table1-pretrain-t",
        "--scale",
        "full",
        "--data-root",
        str(root),
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    assert main([*argv, *(x for s in sets for x in ("--set", s))]) == 0
    log = caplog.text
    assert hub[1] == []  # no network access was attempted

    # the inits: the full variant's hub ids, read from the cache, nothing random
    assert "initial weights {'backbone': 'timm/swin_tiny_patch4_window7_224.ms_in1k'" in log
    assert "'text': 'openai/clip-vit-base-patch32', 'random': []" in log
    saved = json.loads((out / "model" / "config.json").read_text())
    assert "random" not in json.dumps(saved.get("model", saved))

    steps = {r["source"]: r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}
    assert set(steps) == {"o365", "goldg", "goldg-flickr", "cc15m"}
    # M per image with definitions: 150 for detection, 100 for grounding [A]
    # (a name or phrase the dictionary cannot gloss stays bare: a few per batch here)
    assert steps["o365"]["concepts_per_image"] == 150 and steps["o365"]["definition_share"] > 0.95
    for grounding in ("goldg", "goldg-flickr"):
        assert steps[grounding]["concepts_per_image"] == 100 and steps[grounding]["definition_share"] > 0.95
    # the contrastive loss over the gathered batch: here one process, so all 4 local images
    assert steps["cc15m"]["contrastive_images"] == 4 and steps["cc15m"]["contrastive_captions"] == 4
    assert "first image_text step (source cc15m)" in log and "contrastive_images=4" in log
    assert "first detection step (source o365)" in log and "concepts_per_image=150" in log
