"""``load_detector(spec, device=...)`` reaches every loader, and ``detclip-bench models`` lists them.

No GPU here, so the device pass-through is checked with PyTorch's ``meta`` device: a loader that
ignored ``device`` would leave its weights on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from detclip_bench.adapters.models import load_detector
from detclip_bench.cli.main import main
from tests.adapters.conftest import BUILDERS


@pytest.mark.parametrize("model_type", ["owlv2", "grounding-dino", "omdet-turbo"])
def test_hf_loaders_move_the_model_to_the_device(model_type, model_dirs, detectors):
    det = load_detector(f"hf:{model_dirs(model_type)}", device="meta")
    assert det.options.device == "meta"
    assert {p.device.type for p in det.model.parameters()} == {"meta"}
    default = detectors(model_type)  # load_detector without device
    assert default.options.device == "cpu" and {p.device.type for p in default.model.parameters()} == {"cpu"}


def test_device_does_not_change_the_identity(model_dirs):
    source = f"hf:{model_dirs('owlv2')}"
    from detclip_bench.adapters.hf_owl import OwlDetector, OwlOptions

    assert OwlDetector.load(source[3:], OwlOptions(batch_size=2), device="cpu").options == OwlOptions(batch_size=2)
    assert load_detector(source).identity() == OwlDetector.load(source[3:], OwlOptions(device="cpu")).identity()


def test_detclipv2_loader_moves_the_model_to_the_device(tmp_path):
    from reference_model.detclipv2 import DetCLIPv2
    from tests.reference_model.conftest import tiny_config

    torch.manual_seed(0)
    DetCLIPv2(tiny_config()).save_pretrained(tmp_path / "ckpt")
    on_cpu = load_detector(str(tmp_path / "ckpt"))
    assert isinstance(on_cpu, DetCLIPv2) and not on_cpu.training
    assert on_cpu.name == str(tmp_path / "ckpt")  # results.json records the --model spec
    assert {p.device.type for p in on_cpu.parameters()} == {"cpu"}
    on_meta = load_detector(str(tmp_path / "ckpt"), device="meta")
    assert {p.device.type for p in on_meta.parameters()} == {"meta"}


def test_models_verb_prints_exactly_what_ls_models_prints(capsys):
    assert main(["ls", "models"]) == 0
    listing = capsys.readouterr().out
    assert main(["models"]) == 0
    assert capsys.readouterr().out == listing
    from detclip_bench.adapters.models import checkpoint_families

    lines = {ln.split()[0]: ln for ln in listing.splitlines()}
    assert sorted(lines) == sorted([*checkpoint_families(), *BUILDERS])
    assert "--model <checkpoint dir or hub id>" in lines["detclipv2"]
    assert "--model onnx:<folder>" in lines["onnx"]  # registered by reference_model's entry point
    assert all("--model hf:" in lines[name] for name in BUILDERS)


def test_models_verb_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["models", "--help"])
    assert "examples:" in capsys.readouterr().out
