"""Where a number came from: the code's git hash, a fingerprint of the weights, library versions, the device.

One helper each, so a suite run, a leaderboard result and a model's ``identity()`` describe the same
checkout and the same weights the same way.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["LIBRARIES", "device_description", "git_hash", "library_versions", "weights_fingerprint"]

#: distributions whose versions change numbers (the engine, the oracles, the model stacks) and this package
LIBRARIES = ("torch", "torchvision", "timm", "transformers", "hotcoco", "numpy", "pycocotools", "detclip-bench")


def git_hash() -> str | None:
    """HEAD of the checkout this package runs from; None outside a git work tree (or without git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    head = out.stdout.strip()
    return head if out.returncode == 0 and head else None


def weights_fingerprint(state_dict: Mapping[str, Any], config: dict, extra: dict | None = None) -> str:
    """Full sha256 hex over ``extra`` and ``config`` (as sorted JSON) and every tensor's name, dtype, shape and
    bytes, in name order: the same weights give the same digest whatever the dict order or device."""
    import torch

    digest = hashlib.sha256()
    digest.update(json.dumps(extra or {}, sort_keys=True, default=str).encode())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(state_dict.items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str | None]:
    """Installed version of each of :data:`LIBRARIES` (None where not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description() -> str:
    """The CUDA device's name when one is in use, else ``"cpu"``."""
    try:
        import torch
    except ImportError:
        return "cpu"
    if not torch.cuda.is_available():
        return "cpu"
    return torch.cuda.get_device_name(torch.cuda.current_device())
