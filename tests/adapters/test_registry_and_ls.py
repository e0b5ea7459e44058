"""``--model`` resolution errors and ``detclip-bench ls``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from detclip_bench.adapters.models import MODELS, load_detector
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
    """`ls models` in a fresh interpreter imports neither torch nor the model package behind the entry.

    (``reference_model.cli`` may load: it contributes the ``export`` verb's parser, not the model.)
    """
    code = (
        "import sys; from detclip_bench.cli.main import main; assert main(['ls', 'models']) == 0; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
        "or m.startswith('reference_model.detclipv2')), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "detclipv2" in done.stdout.split() and "detclipv2" in MODELS
    assert done.stderr.strip().splitlines()[-1] == "[]"


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
    from detclip_bench.adapters import models

    seen = []
    monkeypatch.setattr(models, "_FAMILIES", ("detclipv2", "toyfam"))
    monkeypatch.setitem(models.MODELS._entries, "toyfam", lambda source, device: seen.append(source) or "det")
    assert load_detector("toyfam:some/dir") == "det" and seen == ["some/dir"]
    monkeypatch.setattr(models, "_FAMILIES", ())
    with pytest.raises(DataError, match="no 'detclipv2' model family is installed"):
        load_detector(str(tmp_path))


# ------------------------------------------------------------------ a bare --model that is another kind of model


def test_a_bare_export_folder_suggests_onnx(tmp_path, capsys):
    (tmp_path / "export.json").write_text("{}")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x01")
    with pytest.raises(DataError, match=rf"exported model .*use --model onnx:{tmp_path}$"):
        load_detector(str(tmp_path))
    from tests.datasets.writers import write_jpeg

    photo = write_jpeg(tmp_path.parent / f"{tmp_path.name}-photos" / "a.jpg")
    argv = [
        "predict",
        "--model",
        str(tmp_path),
        "--images",
        str(photo),
        "--prompts",
        "cat",
        "--out",
        str(photo.parent / "o"),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"onnx:{tmp_path}" in err and "model.safetensors" not in err


def test_a_bare_transformers_folder_suggests_hf(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "owlv2"}')
    with pytest.raises(DataError, match=rf"model_type 'owlv2'\), not a checkpoint: use --model hf:{tmp_path}$"):
        load_detector(str(tmp_path))


def test_a_bare_hub_id_in_the_cache_suggests_hf(tmp_path, monkeypatch):
    from huggingface_hub import constants

    snap = tmp_path / "models--google--owlv2-base-patch16" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text('{"model_type": "owlv2"}')
    (tmp_path / "models--google--owlv2-base-patch16" / "refs").mkdir()
    (tmp_path / "models--google--owlv2-base-patch16" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(DataError, match=r"hub id .* use --model hf:google/owlv2-base-patch16$"):
        load_detector("google/owlv2-base-patch16")


def test_a_bare_hub_id_the_hub_cannot_serve_says_what_to_write(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from detclip_bench.adapters import models

    class ConnectError(Exception):  # httpx's, as huggingface_hub raises it offline
        pass

    def offline(source, device):
        raise ConnectError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "_FAMILIES", ("detclipv2",))
    monkeypatch.setitem(models.MODELS._entries, "detclipv2", offline)
    with pytest.raises(DataError, match=r"hub could not be reached .*\(ConnectError\).* --model hf:someorg/detector"):
        load_detector("someorg/detector")
    # a local folder's own failure is not rewritten
    with pytest.raises(ConnectError):
        load_detector(str(tmp_path))
