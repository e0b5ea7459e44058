"""Atomic, verifiable, resumable checkpoints.

A checkpoint is a directory ``<root>/<name>/`` with ``model.safetensors`` (weights),
``train_state.pt`` (optimizer, scheduler, scaler, sampler, early-stop and RNG state) and
``manifest.json`` (size and SHA-256 of both). Every file is written through
:func:`detclip_bench.io.atomic_path` (temp file, fsync, rename); the manifest is written last and
``<root>/latest.json`` is repointed only after it. A checkpoint whose manifest is missing or whose
files do not match it was never finished and is refused with a :class:`DataError`;
``torch.load`` runs with ``weights_only=True`` so a checkpoint cannot execute code.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from detclip_bench.errors import DataError
from detclip_bench.io import atomic_path, atomic_write_json, read_json

__all__ = ["MANIFEST", "find_latest", "load_checkpoint", "prune_checkpoints", "save_checkpoint", "unwrap"]

MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.pt"
LATEST = "latest.json"


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    root: str | Path, name: str, model: nn.Module, train_state: dict[str, Any], *, point_latest: bool = True
) -> Path:
    """Write checkpoint ``root/name`` atomically and (optionally) make it the one ``--resume`` finds."""
    root = Path(root)
    ckpt = root / name
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / MANIFEST).unlink(missing_ok=True)  # an overwritten checkpoint is invalid until finished
    with atomic_path(ckpt / MODEL_FILE) as tmp:
        save_model(unwrap(model), str(tmp))
    with atomic_path(ckpt / STATE_FILE) as tmp:
        torch.save(train_state, tmp)
    files = {f: {"bytes": (ckpt / f).stat().st_size, "sha256": _sha256(ckpt / f)} for f in (MODEL_FILE, STATE_FILE)}
    atomic_write_json(ckpt / MANIFEST, {"format": "detclip-bench-checkpoint/1", "files": files})
    if point_latest:
        atomic_write_json(root / LATEST, {"name": name})
    return ckpt


def _verify(ckpt: Path) -> None:
    manifest_path = ckpt / MANIFEST
    if not manifest_path.is_file():
        raise DataError(str(ckpt), "checkpoint", "no manifest.json: the checkpoint was never finished; refusing it")
    manifest = read_json(manifest_path)
    for fname, meta in manifest.get("files", {}).items():
        path = ckpt / fname
        if not path.is_file():
            raise DataError(str(path), "checkpoint", "file listed in manifest.json is missing")
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise DataError(
                str(path), "checkpoint", f"truncated or altered: manifest says {meta['bytes']} bytes, file has {size}"
            )
        if _sha256(path) != meta["sha256"]:
            raise DataError(str(path), "checkpoint", "checksum mismatch with manifest.json (corrupt file)")


def find_latest(root: str | Path) -> Path | None:
    """The checkpoint ``latest.json`` points at, or ``None`` when the run has none yet."""
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    return Path(root) / read_json(pointer)["name"]


def load_checkpoint(ckpt: str | Path, model: nn.Module | None = None, map_location: str | torch.device = "cpu") -> dict:
    """Verify, load weights into ``model`` (strict) and return the training state dict."""
    ckpt = Path(ckpt)
    _verify(ckpt)
    if model is not None:
        try:
            missing, unexpected = load_model(
                unwrap(model), str(ckpt / MODEL_FILE), strict=False, device=str(map_location)
            )
        except Exception as exc:  # safetensors raises several types for bad files
            raise DataError(str(ckpt / MODEL_FILE), "checkpoint", f"cannot load weights: {exc}") from exc
        if missing or unexpected:
            raise DataError(
                str(ckpt / MODEL_FILE),
                "checkpoint",
                f"weights do not fit the model: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}",
            )
    try:
        return torch.load(ckpt / STATE_FILE, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise DataError(str(ckpt / STATE_FILE), "checkpoint", f"cannot load training state: {exc}") from exc


def prune_checkpoints(root: str | Path, keep: int, prefix: str = "step_") -> None:
    """Delete all but the newest ``keep`` ``step_*`` checkpoints (never the one latest.json names)."""
    if keep <= 0:
        return
    root = Path(root)
    latest = find_latest(root)
    steps = sorted(p for p in root.glob(f"{prefix}*") if p.is_dir())
    for old in steps[:-keep]:
        if latest is None or old.resolve() != latest.resolve():
            shutil.rmtree(old, ignore_errors=True)
