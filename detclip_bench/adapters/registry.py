"""``--model`` resolution: the ``MODELS`` registry and :func:`load_detector`.

A spec is either ``hf:<hub id or local dir>`` (a transformers zero-shot detector; the adapter is
picked by ``config.json``'s ``model_type``, read offline) or anything else, which is a
detclip-bench checkpoint (path or hub id) for the DetCLIPv2 reference model. Every entry is a lazy
``"module:function"`` loader ``(source: str, *, device: str) -> Detector``, so listing models imports
no torch.
"""

from __future__ import annotations

from collections.abc import Callable

from detclip_bench.adapters.base import Detector
from detclip_bench.errors import DataError
from detclip_bench.registry import Registry

__all__ = ["HF_PREFIX", "MODELS", "hf_model_types", "load_detector"]

HF_PREFIX = "hf:"
DETCLIPV2 = "detclipv2"

MODELS: Registry[Callable[..., Detector]] = Registry("model")
MODELS.add(DETCLIPV2, "detclip_bench.adapters.registry:load_detclipv2")
# transformers model_type -> adapter loader (the zero-shot detectors transformers 5.x provides)
MODELS.add("owlv2", "detclip_bench.adapters.hf_owl:load")
MODELS.add("owlvit", "detclip_bench.adapters.hf_owl:load")
MODELS.add("grounding-dino", "detclip_bench.adapters.hf_grounding_dino:load")
MODELS.add("mm-grounding-dino", "detclip_bench.adapters.hf_grounding_dino:load")
MODELS.add("omdet-turbo", "detclip_bench.adapters.hf_omdet:load")


def hf_model_types() -> list[str]:
    return [name for name in MODELS.names() if name != DETCLIPV2]


def load_detclipv2(source: str, *, device: str = "cpu") -> Detector:
    """The reference model's own loader (``DetCLIPv2.from_pretrained``), moved to ``device``, named by its spec."""
    try:
        from reference_model.detclipv2 import DetCLIPv2
    except ImportError as exc:
        raise DataError(source, "model", f"the DetCLIPv2 reference model is not available ({exc})") from None
    model = DetCLIPv2.from_pretrained(source).to(device).eval()
    model.name = source  # like hf:<source>: results.json then records what --model was evaluated
    return model


def load_detector(spec: str, *, device: str = "cpu") -> Detector:
    """Resolve a ``--model`` spec to a ready :class:`Detector` on ``device`` (offline: nothing is downloaded)."""
    spec = spec.strip()
    if not spec.startswith(HF_PREFIX):
        return MODELS.get(DETCLIPV2)(spec, device=device)
    source = spec[len(HF_PREFIX) :]
    if not source:
        raise DataError(spec, "model", "empty model after 'hf:'; expected hf:<hub id or local directory>")
    from detclip_bench.adapters.hf_common import read_model_type

    model_type = read_model_type(source)
    if model_type not in hf_model_types():
        raise DataError(
            source,
            "config.json",
            f"model_type {model_type!r} has no zero-shot detection adapter; supported: {', '.join(hf_model_types())}",
        )
    return MODELS.get(model_type)(source, device=device)
