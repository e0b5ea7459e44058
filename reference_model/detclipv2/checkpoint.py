"""Checkpoints: ``model.safetensors`` + ``config.json`` + ``text/`` (tokenizer and transformers
config), written atomically; loading never unpickles anything.

A hub id is resolved with ``huggingface_hub.snapshot_download`` (honours ``HF_HUB_OFFLINE`` and
the local cache), restricted to the safetensors/JSON/tokenizer files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from detclip_bench.errors import DataError
from detclip_bench.io import atomic_path, atomic_write_bytes, atomic_write_json, read_json
from reference_model.detclipv2.config import DetCLIPv2Config

__all__ = ["CONFIG_NAME", "TEXT_DIR", "WEIGHTS_NAME", "load_pretrained", "resolve_checkpoint", "save_pretrained"]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
TEXT_DIR = "text"
FORMAT_VERSION = 2  # 2: backbone_init/text_init replace the old weight fields (1 is still read, see from_dict)


def save_pretrained(model, directory) -> None:
    from safetensors.torch import save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:  # tokenizer writers are not atomic: stage, then copy
        model.text_encoder.save_text_files(Path(tmp))
        for f in sorted(Path(tmp).iterdir()):
            atomic_write_bytes(directory / TEXT_DIR / f.name, f.read_bytes())
    with atomic_path(directory / WEIGHTS_NAME) as tmp_weights:
        save_model(model, str(tmp_weights), metadata={"format": "detclipv2", "version": str(FORMAT_VERSION)})
    atomic_write_json(directory / CONFIG_NAME, {"format_version": FORMAT_VERSION, **model.config.to_dict()})


def resolve_checkpoint(path_or_hub_id: str) -> Path:
    """A local checkpoint folder, or the hub snapshot of ``path_or_hub_id`` (safe files only)."""
    local = Path(path_or_hub_id)
    if local.is_dir():
        return local
    if local.exists() or path_or_hub_id.startswith((".", "/", "~")):
        raise DataError(path_or_hub_id, "-", "not a checkpoint folder")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(path_or_hub_id, allow_patterns=["*.json", "*.safetensors", "text/*", "*.txt"]))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise DataError(path_or_hub_id, "-", f"cannot resolve checkpoint (local folder or hub id): {exc}") from exc


def load_pretrained(cls, path_or_hub_id: str, **overrides):
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    root = resolve_checkpoint(path_or_hub_id)
    weights, config_file = root / WEIGHTS_NAME, root / CONFIG_NAME
    for needed in (weights, config_file, root / TEXT_DIR):
        if not needed.exists():
            raise DataError(str(needed), "-", "missing from checkpoint (only safetensors checkpoints are loaded)")
    raw = read_json(config_file)
    if not isinstance(raw, dict):
        raise DataError(str(config_file), "-", "config.json must be an object")
    version = raw.pop("format_version", None)
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise DataError(
            str(config_file),
            "format_version",
            f"checkpoint format {version!r} is not supported "
            f"(this version reads 1..{FORMAT_VERSION}; a newer detclip-bench wrote it?)",
        )
    try:
        config = DetCLIPv2Config.from_dict(raw).replace(**overrides)
    except (TypeError, ValueError) as exc:
        raise DataError(str(config_file), "-", str(exc)) from exc
    model = cls(config, text_source=str(root / TEXT_DIR))
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except (SafetensorError, OSError) as exc:
        raise DataError(str(weights), "-", f"unreadable weights: {exc}") from exc
    except RuntimeError as exc:  # shape mismatches from load_state_dict
        raise DataError(str(weights), "-", f"weights do not fit the config: {exc}") from exc
    if missing or unexpected:
        raise DataError(
            str(weights), "-", f"weights do not fit the config: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    model.text_encoder.clear_caches()
    return model
