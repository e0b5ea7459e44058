"""FPN neck P3–P7 (mmdetection ATSS layout [I]): lateral + 3×3 output convs on C3–C5, then
stride-2 convs on P5's output for P6 and P7. Built from torchvision's FeaturePyramidNetwork.

The extra levels are our own block, not torchvision's ``LastLevelP6P7``: that one puts a ReLU
between P6 and the P7 conv (RetinaNet's choice), while mmdetection's ATSS neck
(``add_extra_convs='on_output'``, ``relu_before_extra_convs=False``) feeds P6 to the P7 conv as
is. The parameter names (``fpn.extra_blocks.p6`` / ``.p7``) are the same, so checkpoints load.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock

__all__ = ["FPN", "P6P7OnOutput"]


class P6P7OnOutput(ExtraFPNBlock):
    """P6 = 3×3 stride-2 conv on the P5 *output*, P7 = 3×3 stride-2 conv on P6; no activation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.p6 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.p7 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        for conv in (self.p6, self.p7):  # the init torchvision uses for the rest of the FPN
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def forward(
        self, results: list[torch.Tensor], x: list[torch.Tensor], names: list[str]
    ) -> tuple[list[torch.Tensor], list[str]]:
        p6 = self.p6(results[-1])
        p7 = self.p7(p6)
        return [*results, p6, p7], [*names, "p6", "p7"]


class FPN(nn.Module):
    def __init__(self, in_channels: list[int], out_channels: int = 256, num_levels: int = 5) -> None:
        super().__init__()
        if not 2 <= num_levels <= 5:
            raise ValueError(f"num_levels must be in [2, 5], got {num_levels}")
        self.num_levels = num_levels
        extra = P6P7OnOutput(out_channels) if num_levels > 3 else None
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=extra)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = list(self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats))).values())
        return outs[: self.num_levels]
