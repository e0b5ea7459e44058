"""Checkpoints and caches: another config, truncation, half-written step dirs, and untrusted pickles.

Every malicious payload below would create a marker file if it were unpickled (``Path.touch`` via
``__reduce__``); each test asserts the refusal is a clear DataError *and* that the marker is absent.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from detclip_bench.errors import DataError
from detclip_bench.predict.arrays import PredictionArrays
from reference_model.train.checkpoint import MANIFEST, find_latest, load_checkpoint, save_checkpoint

from .corpus import assert_data_error


class _Touch:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _malicious(marker: Path) -> bytes:
    return pickle.dumps({"state": _Touch(marker)})


def _torch_malicious(marker: Path, path: Path) -> None:
    torch.save({"step": 1, "payload": _Touch(marker)}, path)  # a real torch zip whose data.pkl runs code


def _resign(ckpt: Path) -> None:
    """Rewrite the manifest so size/sha match the tampered files: only the pickle defence is left."""
    manifest = json.loads((ckpt / MANIFEST).read_text())
    for name in manifest["files"]:
        data = (ckpt / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / MANIFEST).write_text(json.dumps(manifest))


def _toy(width: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, width), nn.Linear(width, 1))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a pickle was executed"


# ---- training checkpoints (reference_model/train/checkpoint.py) ---------------------------------------
def test_training_state_pickle_is_refused(tmp_path, marker):
    ckpt = save_checkpoint(tmp_path, "step_00000001", _toy(), {"step": 1})
    _torch_malicious(marker, ckpt / "train_state.pt")
    _resign(ckpt)
    assert_data_error(
        lambda: load_checkpoint(find_latest(tmp_path), _toy()),
        "train_state.pt",
        "checkpoint",
        "cannot load training state",
    )


def test_training_weights_replaced_by_a_pickle_are_refused(tmp_path, marker):
    ckpt = save_checkpoint(tmp_path, "step_00000001", _toy(), {"step": 1})
    (ckpt / "model.safetensors").write_bytes(_malicious(marker))
    _resign(ckpt)
    assert_data_error(lambda: load_checkpoint(ckpt, _toy()), "model.safetensors", "cannot load weights")


def test_training_checkpoint_from_another_model_is_refused(tmp_path):
    ckpt = save_checkpoint(tmp_path, "step_00000001", _toy(width=4), {"step": 1})
    assert_data_error(lambda: load_checkpoint(ckpt, _toy(width=6)), "model.safetensors", "checkpoint")


def test_step_dir_without_manifest_is_never_loaded(tmp_path):
    good = save_checkpoint(tmp_path, "step_00000001", _toy(), {"step": 1})
    half = save_checkpoint(tmp_path, "step_00000002", _toy(), {"step": 2})
    (half / MANIFEST).unlink()  # as if killed between the weights and the manifest
    assert find_latest(tmp_path) == half  # latest.json names it ...
    assert_data_error(lambda: load_checkpoint(find_latest(tmp_path)), "step_00000002", "never finished")
    assert load_checkpoint(good)["step"] == 1  # ... and the finished one still loads


def test_truncated_training_weights_are_never_loaded(tmp_path):
    ckpt = save_checkpoint(tmp_path, "step_00000001", _toy(), {"step": 1})
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    model = _toy()
    before = [p.clone() for p in model.parameters()]
    assert_data_error(lambda: load_checkpoint(ckpt, model), "model.safetensors", "truncated")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # untouched


def test_truncated_latest_pointer_is_a_data_error(tmp_path):
    save_checkpoint(tmp_path, "step_00000001", _toy(), {"step": 1})
    (tmp_path / "latest.json").write_text('{"name": "step_')
    assert_data_error(lambda: find_latest(tmp_path), "latest.json", "malformed JSON")


def test_latest_pointing_at_a_missing_dir_is_refused(tmp_path):
    save_checkpoint(tmp_path, "step_00000001", _toy(), {"step": 1})
    (tmp_path / "latest.json").write_text(json.dumps({"name": "step_00000009"}))
    assert_data_error(lambda: load_checkpoint(find_latest(tmp_path)), "step_00000009", "never finished")


# ---- model checkpoints (reference_model/detclipv2/checkpoint.py) -------------------------------------
@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    from reference_model.detclipv2 import DetCLIPv2
    from tests.reference_model.conftest import tiny_config

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    DetCLIPv2(tiny_config()).save_pretrained(root / "a")
    DetCLIPv2(tiny_config(embed_dim=8)).save_pretrained(root / "b")
    return root


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_model_weights_from_another_config_are_refused(tmp_path, saved_models):
    from reference_model.detclipv2 import DetCLIPv2

    ckpt = _copy(saved_models / "a", tmp_path / "mixed")
    (ckpt / "model.safetensors").write_bytes((saved_models / "b" / "model.safetensors").read_bytes())
    assert_data_error(lambda: DetCLIPv2.from_pretrained(str(ckpt)), "model.safetensors", "do not fit the config")


def test_truncated_model_weights_are_refused(tmp_path, saved_models):
    from reference_model.detclipv2 import DetCLIPv2

    ckpt = _copy(saved_models / "a", tmp_path / "trunc")
    raw = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    assert_data_error(lambda: DetCLIPv2.from_pretrained(str(ckpt)), "model.safetensors", "unreadable weights")


def test_truncated_model_config_is_refused(tmp_path, saved_models):
    from reference_model.detclipv2 import DetCLIPv2

    ckpt = _copy(saved_models / "a", tmp_path / "cfg")
    (ckpt / "config.json").write_text((ckpt / "config.json").read_text()[:25])
    assert_data_error(lambda: DetCLIPv2.from_pretrained(str(ckpt)), "config.json", "malformed JSON")


# ---- caches ------------------------------------------------------------------------------------------
def test_prediction_cache_with_a_pickled_array_is_refused(tmp_path, marker):
    path = tmp_path / "cache.npz"
    evil = np.empty(1, dtype=object)
    evil[0] = _Touch(marker)
    np.savez(
        path,
        image_ids=np.zeros(1, np.int64),
        boxes=np.zeros((1, 4), np.float32),
        scores=evil,
        category_ids=np.zeros(1, np.int64),
        meta=np.array("{}"),
    )
    assert_data_error(lambda: PredictionArrays.load(path), "cache.npz", "unreadable prediction cache")


def test_truncated_prediction_cache_is_refused(tmp_path):
    path = tmp_path / "cache.npz"
    PredictionArrays(np.arange(3), np.zeros((3, 4), np.float32), np.ones(3, np.float32), np.ones(3, np.int64)).save(
        path, {"prompt_hash": "x"}
    )
    path.write_bytes(path.read_bytes()[:100])
    assert_data_error(lambda: PredictionArrays.load(path), "cache.npz", "delete it to recompute")


def test_annotation_index_cache_with_a_pickle_is_ignored_and_rebuilt(tmp_path, marker):
    from detclip_bench.datasets import open_dataset

    from .corpus import write_coco

    path = write_coco(tmp_path)
    evil = np.empty(1, dtype=object)
    evil[0] = _Touch(marker)
    with open(path.with_name(path.name + ".index.npz"), "wb") as fh:
        np.savez(fh, stamp=evil)
    assert len(open_dataset(path, "coco")) == 2  # rebuilt from the json, pickle never loaded


def test_truncated_annotation_index_cache_is_rebuilt(tmp_path):
    from detclip_bench.datasets import open_dataset

    from .corpus import write_coco

    path = write_coco(tmp_path)
    assert len(open_dataset(path, "coco")) == 2
    cache = path.with_name(path.name + ".index.npz")
    cache.write_bytes(cache.read_bytes()[:64])
    assert len(open_dataset(path, "coco")) == 2


def test_data_error_type_is_what_callers_catch():
    assert issubclass(DataError, ValueError)
