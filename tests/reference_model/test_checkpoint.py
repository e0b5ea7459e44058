"""Checkpoint round trip (same outputs after reload), hub-id resolution offline, and no pickle ever."""

from __future__ import annotations

import json
import os
import pickle

import huggingface_hub
import numpy as np
import pytest
import torch
from PIL import Image

from detclip_bench.errors import DataError
from reference_model.detclipv2 import DetCLIPv2
from reference_model.detclipv2.checkpoint import CONFIG_NAME, TEXT_DIR, WEIGHTS_NAME

from .conftest import tiny_config

PROMPTS = ["red box, a red rectangle", "zebra"]
IMAGE = Image.new("RGB", (120, 90), (40, 160, 200))


def _trained_model() -> DetCLIPv2:
    torch.manual_seed(0)
    model = DetCLIPv2(tiny_config())
    with torch.no_grad():  # move away from init so a silently skipped load would be caught
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model


def test_round_trip_same_outputs_and_identity(tmp_path):
    model = _trained_model()
    before = model.predict([IMAGE], PROMPTS)[0]
    model.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {WEIGHTS_NAME, CONFIG_NAME, TEXT_DIR}
    assert not list((tmp_path / "ckpt").glob(".*.tmp"))  # atomic writes leave no temp files
    loaded = DetCLIPv2.from_pretrained(str(tmp_path / "ckpt"))
    after = loaded.predict([IMAGE], PROMPTS)[0]
    np.testing.assert_array_equal(before.labels, after.labels)
    np.testing.assert_allclose(before.scores, after.scores, rtol=1e-6)
    np.testing.assert_allclose(before.boxes, after.boxes, rtol=1e-6)
    assert loaded.identity() == model.identity()
    assert loaded.config == model.config


def test_identity_changes_with_weights():
    model = _trained_model()
    first = model.identity()
    assert model.identity() == first
    with torch.no_grad():
        model.head.logits.bias.add_(0.5)
    assert model.identity() != first


def test_hub_id_resolved_from_offline_cache(tmp_path, monkeypatch):
    model = _trained_model()
    commit = "0" * 40
    snapshot = tmp_path / "hub" / "models--someone--detclipv2-tiny" / "snapshots" / commit
    model.save_pretrained(snapshot)
    refs = tmp_path / "hub" / "models--someone--detclipv2-tiny" / "refs"
    refs.mkdir()
    (refs / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = DetCLIPv2.from_pretrained("someone/detclipv2-tiny")
    assert loaded.identity() == model.identity()
    with pytest.raises(DataError, match="cannot resolve"):
        DetCLIPv2.from_pretrained("someone/not-cached")


class _Exploit:
    def __reduce__(self):
        return (os.mkdir, (os.environ["DETCLIP_PICKLE_MARKER"],))


def test_pickle_files_are_never_loaded(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("DETCLIP_PICKLE_MARKER", str(marker))
    model = _trained_model()
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    for name in ("pytorch_model.bin", "model.pt", "model.pth"):
        (ckpt / name).write_bytes(pickle.dumps(_Exploit()))
    DetCLIPv2.from_pretrained(str(ckpt))  # loads the safetensors, ignores the pickles
    (ckpt / WEIGHTS_NAME).unlink()
    with pytest.raises(DataError, match="only safetensors"):
        DetCLIPv2.from_pretrained(str(ckpt))
    (ckpt / WEIGHTS_NAME).write_bytes(pickle.dumps(_Exploit()))  # a pickle under the safetensors name
    with pytest.raises(DataError, match="unreadable weights"):
        DetCLIPv2.from_pretrained(str(ckpt))
    assert not marker.exists()


def test_config_mismatch_is_a_data_error(tmp_path):
    _trained_model().save_pretrained(tmp_path / "a")
    with pytest.raises(DataError, match="do not fit"):
        DetCLIPv2.from_pretrained(str(tmp_path / "a"), embed_dim=8)
    with pytest.raises(DataError, match="unknown DetCLIPv2Config"):
        DetCLIPv2.from_pretrained(str(tmp_path / "a"), no_such_field=1)


def test_unknown_format_version_is_refused(tmp_path):
    _trained_model().save_pretrained(tmp_path / "a")
    config = tmp_path / "a" / CONFIG_NAME
    raw = json.loads(config.read_text())
    assert raw["format_version"] == 2
    for bad in (3, None, "1"):
        config.write_text(json.dumps({**raw, "format_version": bad}))
        with pytest.raises(DataError, match=r"checkpoint format .* is not supported"):
            DetCLIPv2.from_pretrained(str(tmp_path / "a"))
