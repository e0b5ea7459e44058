"""Delta (dx, dy, dw, dh) box coder and the per-level anchor grid of a one-anchor ATSS head.

The coder wraps torchvision's detection ``BoxCoder`` (weights 10/10/5/5 = mmdetection's target
stds 0.1/0.1/0.2/0.2); anchors are one square per location, side ``scale × stride``.
"""

from __future__ import annotations

import torch
from torchvision.models.detection._utils import BoxCoder

__all__ = ["DeltaBoxCoder", "anchors_inside", "make_anchors"]


class DeltaBoxCoder:
    def __init__(self, weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)) -> None:
        self._coder = BoxCoder(weights=weights)

    def encode(self, gt_boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Deltas that turn ``anchors`` (N, 4) into ``gt_boxes`` (N, 4), both xyxy."""
        return self._coder.encode_single(gt_boxes, anchors)

    def decode(self, deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Boxes (…, 4) xyxy from deltas (…, 4) applied to anchors broadcastable to them."""
        shape = deltas.shape
        anchors = anchors.expand(shape).reshape(-1, 4)
        boxes = self._coder.decode_single(deltas.reshape(-1, 4).float(), anchors.float())
        return boxes.reshape(shape)


def make_anchors(
    feature_sizes: list[tuple[int, int]],
    strides: tuple[int, ...],
    scale: float,
    center_offset: float = 0.0,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Per-level anchors (H·W, 4) xyxy in input pixels, row-major like a flattened feature map."""
    out = []
    for (h, w), stride in zip(feature_sizes, strides, strict=True):
        ys = (torch.arange(h, device=device, dtype=torch.float32) + center_offset) * stride
        xs = (torch.arange(w, device=device, dtype=torch.float32) + center_offset) * stride
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        half = scale * stride / 2
        centers = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 4)
        out.append(centers + torch.tensor([-half, -half, half, half], device=device))
    return out


def anchors_inside(anchors: torch.Tensor, image_sizes, device: torch.device | str | None = None) -> torch.Tensor:
    """(B, K) bool: anchor k's centre lies inside image b's own resized region (not the padding).

    ``anchors`` (K, 4) xyxy, all levels concatenated; ``image_sizes`` (B) of (h, w) as in
    ``TrainBatch.image_sizes``.
    """
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    sizes = torch.as_tensor(image_sizes, dtype=centres.dtype, device=device or anchors.device).reshape(-1, 2)
    return (centres[None, :, 0] < sizes[:, 1:2]) & (centres[None, :, 1] < sizes[:, 0:1])
