"""``--model`` resolution errors and ``detclip-bench ls``."""

from __future__ import annotations

import pytest

from detclip_bench.adapters.registry import MODELS, load_detector
from detclip_bench.cli.main import main
from detclip_bench.errors import DataError


def test_unknown_model_type_lists_supported(tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(tmp_path)
    with pytest.raises(DataError, match=r"model_type 'bert' has no zero-shot detection adapter; supported: .*owlv2"):
        load_detector(f"hf:{tmp_path}")


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="model directory does not exist"):
        load_detector(f"hf:{tmp_path / 'nope'}")


def test_file_instead_of_directory(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(DataError, match="expected a model directory"):
        load_detector(f"hf:{tmp_path / 'model.bin'}")


def test_hub_id_not_in_cache_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(DataError, match="not in the Hugging Face cache"):
        load_detector("hf:someorg/not-a-cached-model")


def test_empty_hf_spec():
    with pytest.raises(DataError, match="empty model after 'hf:'"):
        load_detector("hf:")


def test_detclipv2_entry_is_lazy():
    assert "detclipv2" in MODELS  # resolved only when a checkpoint is loaded


def test_ls_models_lists_every_adapter(capsys):
    assert main(["ls", "models"]) == 0
    out = capsys.readouterr().out
    for name in ["detclipv2", "owlv2", "owlvit", "grounding-dino", "mm-grounding-dino", "omdet-turbo"]:
        assert name in out


def test_ls_lists_what_other_packages_register(capsys):
    """``recipes`` and ``tables`` come from the recipes package through the entry-point group, not a core import."""
    from detclip_bench.cli.ls import CORE_LISTINGS, listings
    from recipes import EXPERIMENTS, RECIPES

    assert {"recipes", "tables"} <= set(listings()) and not {"recipes", "tables"} & set(CORE_LISTINGS)
    assert main(["ls", "recipes"]) == 0
    assert capsys.readouterr().out.split() == sorted(RECIPES)
    assert main(["ls", "tables"]) == 0
    assert capsys.readouterr().out.split() == sorted(EXPERIMENTS)


def test_checkpoint_family_prefix_and_unknown_family(tmp_path, monkeypatch):
    from detclip_bench.adapters import registry

    seen = []
    monkeypatch.setattr(registry, "_FAMILIES", ("detclipv2", "toyfam"))
    monkeypatch.setitem(registry.MODELS._entries, "toyfam", lambda source, device: seen.append(source) or "det")
    assert load_detector("toyfam:some/dir") == "det" and seen == ["some/dir"]
    monkeypatch.setattr(registry, "_FAMILIES", ())
    with pytest.raises(DataError, match="no 'detclipv2' model family is installed"):
        load_detector(str(tmp_path))
