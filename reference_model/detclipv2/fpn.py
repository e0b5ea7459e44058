"""FPN neck P3–P7 (mmdetection ATSS layout [I]): lateral + 3×3 output convs on C3–C5, then
stride-2 convs on P5's output for P6 and P7. Built from torchvision's FeaturePyramidNetwork."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

__all__ = ["FPN"]


class FPN(nn.Module):
    def __init__(self, in_channels: list[int], out_channels: int = 256, num_levels: int = 5) -> None:
        super().__init__()
        if not 2 <= num_levels <= 5:
            raise ValueError(f"num_levels must be in [2, 5], got {num_levels}")
        self.num_levels = num_levels
        extra = LastLevelP6P7(out_channels, out_channels) if num_levels > 3 else None
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=extra)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = list(self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats))).values())
        return outs[: self.num_levels]
