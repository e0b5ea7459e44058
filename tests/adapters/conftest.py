"""Session-wide tiny detectors: built once from their config classes, saved, and loaded back by the adapters."""

from __future__ import annotations

import pytest

from tests.adapters import tiny_models

BUILDERS = {
    "owlv2": lambda d: tiny_models.save_owl(d, "owlv2"),
    "owlvit": lambda d: tiny_models.save_owl(d, "owlvit"),
    "grounding-dino": lambda d: tiny_models.save_grounding_dino(d),
    "mm-grounding-dino": lambda d: tiny_models.save_grounding_dino(d, mm=True),
    "omdet-turbo": lambda d: tiny_models.save_omdet(d),
}


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """model_type -> directory, built lazily (OmDet's real-size Swin-T backbone is the slow one)."""
    cache: dict = {}

    def get(model_type: str):
        if model_type not in cache:
            cache[model_type] = BUILDERS[model_type](tmp_path_factory.mktemp(model_type))
        return cache[model_type]

    return get


@pytest.fixture(scope="session")
def detectors(model_dirs):
    from detclip_bench.adapters.models import load_detector

    cache: dict = {}

    def get(model_type: str):
        if model_type not in cache:
            cache[model_type] = load_detector(f"hf:{model_dirs(model_type)}")
        return cache[model_type]

    return get
