"""A recipe's config → the model and the opened datasets (shared by ``train``, ``finetune`` and ``reproduce``)."""

from __future__ import annotations

from typing import Any

from detclip_bench.datasets import open_dataset
from reference_model.train.config import TrainConfig

__all__ = ["build_model", "model_overrides", "open_sources"]


def model_overrides(cfg: TrainConfig) -> dict[str, Any]:
    """The DetCLIPv2Config fields the recipe (or ``--set model.*``) names, plus the run's grad_checkpointing.

    Fields not named keep the variant's (or the fine-tuned checkpoint's) own values.
    """
    return {**cfg.model.field_overrides(), "grad_checkpointing": cfg.grad_checkpointing}


def build_model(cfg: TrainConfig):
    """A fresh variant, or ``model.init_from`` (a save_pretrained dir or hub id) for fine-tuning."""
    from reference_model.detclipv2 import DetCLIPv2, create_model  # deferred: the model pulls in timm/torchvision

    if cfg.model.init_from:
        return DetCLIPv2.from_pretrained(cfg.model.init_from, **model_overrides(cfg))
    return create_model(cfg.model.variant, **model_overrides(cfg))


def open_sources(cfg: TrainConfig) -> list:
    return [open_dataset(src.path, format=src.format, **dict(src.options)) for src in cfg.data]
