"""``--model`` resolution: the ``MODELS`` registry and :func:`load_detector`.

A spec is ``hf:<hub id or local dir>`` (a transformers zero-shot detector; the adapter is picked by
``config.json``'s ``model_type``, read offline), ``<family>:<checkpoint>`` for a checkpoint family
registered by another package, or a bare checkpoint path or hub id, which belongs to the default
family, the DetCLIPv2 reference model. Checkpoint families come from the ``detclip_bench.models``
entry-point group (``pyproject.toml``), so this module never imports the packages that provide them.
Every entry is a lazy ``"module:function"`` loader ``(source: str, *, device: str) -> Detector``, so
listing models imports no torch.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from detclip_bench.adapters.base import Detector
from detclip_bench.errors import DataError
from detclip_bench.registry import Registry

__all__ = [
    "DEFAULT_FAMILY",
    "HF_PREFIX",
    "MODELS",
    "MODEL_GROUP",
    "checkpoint_families",
    "hf_model_types",
    "load_detector",
]

HF_PREFIX = "hf:"
MODEL_GROUP = "detclip_bench.models"
DEFAULT_FAMILY = "detclipv2"  # what a bare checkpoint path means

MODELS: Registry[Callable[..., Detector]] = Registry("model")
# transformers model_type -> adapter loader (the zero-shot detectors transformers 5.x provides): each
# adapter class's inherited ``HFDetector.load``
HF_ADAPTERS = {
    "owlv2": "detclip_bench.adapters.hf_owl:OwlDetector.load",
    "owlvit": "detclip_bench.adapters.hf_owl:OwlDetector.load",
    "grounding-dino": "detclip_bench.adapters.hf_grounding_dino:GroundingDinoDetector.load",
    "mm-grounding-dino": "detclip_bench.adapters.hf_grounding_dino:GroundingDinoDetector.load",
    "omdet-turbo": "detclip_bench.adapters.hf_omdet:OmDetDetector.load",
}
for _name, _target in HF_ADAPTERS.items():
    MODELS.add(_name, _target)
_FAMILIES = tuple(ep.name for ep in entry_points(group=MODEL_GROUP))
for _ep in entry_points(group=MODEL_GROUP):
    MODELS.add(_ep.name, _ep.value)


def hf_model_types() -> list[str]:
    return sorted(HF_ADAPTERS)


def checkpoint_families() -> list[str]:
    """Model families with their own checkpoints, registered through the ``detclip_bench.models`` group."""
    return sorted(_FAMILIES)


def load_detector(spec: str, *, device: str = "cpu", options: dict[str, str] | None = None) -> Detector:
    """Resolve a ``--model`` spec to a ready :class:`Detector` on ``device`` (offline: nothing is downloaded).

    ``options``: adapter options of ``hf:`` models as ``--model-option`` strings (e.g. Grounding DINO's
    ``max_classes_per_chunk``); they become part of the detector's identity and results.json.
    ``device="auto"`` (the CLI's default): CUDA when torch sees a GPU, else the CPU; a family loader with
    ``resolves_auto_device = True`` (ONNX Runtime, which may lack CUDA where torch has it) decides itself.
    """
    from detclip_bench.dist import resolve_device

    spec = spec.strip()
    if spec.startswith(HF_PREFIX):
        return _load_hf(spec, resolve_device(device), options)
    if options:
        raise DataError(spec, "--model-option", "adapter options apply to hf: models only")
    family, sep, source = spec.partition(":")
    bare = not sep or family not in _FAMILIES
    if bare:
        family, source = DEFAULT_FAMILY, spec
        hint = _other_kind_of_model(spec)
        if hint is not None:
            raise DataError(spec, "--model", hint)
    if family not in _FAMILIES:
        raise DataError(
            spec,
            "model",
            f"no {family!r} model family is installed (registered families: "
            f"{', '.join(checkpoint_families()) or 'none'}); install detclip-bench with its reference "
            "model, or use hf:<hub id or dir> for a transformers detector",
        )
    loader = MODELS.get(family)
    if not getattr(loader, "resolves_auto_device", False):
        device = resolve_device(device)
    try:
        return loader(source, device=device)
    except Exception as exc:
        if not (bare and _looks_like_hub_id(spec) and _is_network_error(exc)):
            raise
        raise DataError(
            spec,
            "--model",
            f"not a local folder, and the hub could not be reached to fetch it as a {DEFAULT_FAMILY} checkpoint "
            f"({type(exc).__name__}). A transformers detector (OWLv2, Grounding DINO, ...) is --model hf:{spec}, "
            "read from the Hugging Face cache (never downloaded); an exported model is --model onnx:DIR",
        ) from exc


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_NETWORK_ERRORS = {
    "ConnectError",
    "ConnectTimeout",
    "ConnectionError",
    "OfflineModeIsEnabled",
    "LocalEntryNotFoundError",
}


def _looks_like_hub_id(spec: str) -> bool:
    return bool(_HUB_ID.match(spec)) and not Path(spec).expanduser().exists()


def _is_network_error(exc: BaseException) -> bool:
    """huggingface_hub/httpx/requests failures to reach the hub (their classes share no base worth importing)."""
    seen: BaseException | None = exc
    while seen is not None:
        if any(cls.__name__ in _NETWORK_ERRORS for cls in type(seen).__mro__) or "ConnectError" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _config_model_type(path: Path) -> str | None:
    """A transformers ``config.json``'s ``model_type`` (a DetCLIPv2 checkpoint's config has ``format_version``)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or "format_version" in raw or not raw.get("model_type"):
        return None
    return str(raw["model_type"])


def _other_kind_of_model(spec: str) -> str | None:
    """What a bare ``--model`` is when it is an ONNX export or a transformers model, with the spelling to use."""
    local = Path(spec).expanduser()
    if local.is_dir():
        if (local / "export.json").is_file() or any(local.glob("*.onnx")):
            return (
                f"this folder holds an exported model (export.json / *.onnx), not a checkpoint: use --model onnx:{spec}"
            )
        config = local / "config.json"
    elif _looks_like_hub_id(spec):
        from huggingface_hub import try_to_load_from_cache  # offline: the cache only

        cached = try_to_load_from_cache(spec, "config.json")
        config = Path(cached) if isinstance(cached, str | os.PathLike) else None
    else:
        return None
    model_type = _config_model_type(config) if config is not None else None
    if model_type is None:
        return None
    how = "this folder" if local.is_dir() else "this hub id (in the Hugging Face cache)"
    return f"{how} is a transformers model (config.json model_type {model_type!r}), not a checkpoint: use --model hf:{spec}"


def _load_hf(spec: str, device: str, options: dict[str, str] | None) -> Detector:
    source = spec[len(HF_PREFIX) :]
    if not source:
        raise DataError(spec, "model", "empty model after 'hf:'; expected hf:<hub id or local directory>")
    from detclip_bench.adapters.hf_common import read_model_type  # deferred: imports torch; listing models must not

    model_type = read_model_type(source)
    if model_type not in HF_ADAPTERS:
        raise DataError(
            source,
            "config.json",
            f"model_type {model_type!r} has no zero-shot detection adapter; supported: {', '.join(hf_model_types())}",
        )
    return MODELS.get(model_type)(source, device=device, overrides=options)


def parse_model_options(items: list[str]) -> dict[str, str]:
    """``["max_classes_per_chunk=40", ...]`` (repeated ``--model-option``) → ``{key: value}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DataError("--model-option", item, "expected KEY=VALUE, e.g. max_classes_per_chunk=40")
        out[key.strip()] = value.strip()
    return out
