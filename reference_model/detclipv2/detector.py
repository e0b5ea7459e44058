"""The reference model as a ``--model`` family: registered in ``pyproject.toml``'s ``detclip_bench.models``
entry-point group, so ``detclip-bench eval/predict --model <checkpoint>`` loads it without the benchmark
core importing this package."""

from __future__ import annotations

from detclip_bench.adapters.base import Detector
from reference_model.detclipv2.model import DetCLIPv2

__all__ = ["load_detector"]


def load_detector(source: str, *, device: str = "cpu") -> Detector:
    """``DetCLIPv2.from_pretrained(source)`` (a ``save_pretrained`` folder or hub id) on ``device``, in eval mode.

    The detector is named by ``source`` as given, so results.json records what ``--model`` evaluated.
    """
    model = DetCLIPv2.from_pretrained(source).to(device).eval()
    model.name = source
    return model
