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

from collections.abc import Callable
from importlib.metadata import entry_points

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
# transformers model_type -> adapter loader (the zero-shot detectors transformers 5.x provides)
HF_ADAPTERS = {
    "owlv2": "detclip_bench.adapters.hf_owl:load",
    "owlvit": "detclip_bench.adapters.hf_owl:load",
    "grounding-dino": "detclip_bench.adapters.hf_grounding_dino:load",
    "mm-grounding-dino": "detclip_bench.adapters.hf_grounding_dino:load",
    "omdet-turbo": "detclip_bench.adapters.hf_omdet:load",
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
    """
    spec = spec.strip()
    if spec.startswith(HF_PREFIX):
        return _load_hf(spec, device, options)
    if options:
        raise DataError(spec, "--model-option", "adapter options apply to hf: models only")
    family, sep, source = spec.partition(":")
    if not sep or family not in _FAMILIES:
        family, source = DEFAULT_FAMILY, spec
    if family not in _FAMILIES:
        raise DataError(
            spec,
            "model",
            f"no {family!r} model family is installed (registered families: "
            f"{', '.join(checkpoint_families()) or 'none'}); install detclip-bench with its reference "
            "model, or use hf:<hub id or dir> for a transformers detector",
        )
    return MODELS.get(family)(source, device=device)


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
