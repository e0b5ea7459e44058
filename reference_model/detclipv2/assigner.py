"""ATSS assignment (Zhang et al. 2020): adaptive IoU threshold from the statistics of each box's
top-k closest anchors per level.

For each ground-truth box: take the ``topk`` anchors per level whose centres are closest to the
box centre; threshold = mean + std of their IoUs; an anchor is positive when its IoU is at
least that and its centre lies strictly inside the box. An anchor positive for several boxes
goes to the one with the highest IoU.
"""

from __future__ import annotations

import torch
from torchvision.ops import box_iou

__all__ = ["atss_assign", "centerness_targets"]


def atss_assign(
    anchors_per_level: list[torch.Tensor],
    gt_boxes: torch.Tensor,
    topk: int = 9,
    eps: float = 0.01,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Matched ground-truth index for every anchor (all levels concatenated); -1 = background.

    ``valid`` (K,) bool excludes anchors (centred in batch padding) from the candidates, like
    mmdetection's valid flags; they stay background.
    """
    anchors = torch.cat(anchors_per_level)
    num_anchors, num_gt = len(anchors), len(gt_boxes)
    matched = torch.full((num_anchors,), -1, dtype=torch.long, device=anchors.device)
    if num_gt == 0 or num_anchors == 0:
        return matched
    ious = box_iou(anchors, gt_boxes)  # (A, G)
    anchor_ctr = (anchors[:, :2] + anchors[:, 2:]) / 2
    gt_ctr = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    dist = torch.cdist(anchor_ctr, gt_ctr)  # (A, G)
    if valid is not None:
        dist = dist.masked_fill(~valid[:, None], float("inf"))

    candidates, start = [], 0
    for level in anchors_per_level:
        n_level = len(level) if valid is None else int(valid[start : start + len(level)].sum())
        k = min(topk, n_level)
        if k > 0:
            _, idx = dist[start : start + len(level)].topk(k, dim=0, largest=False)  # (k, G)
            candidates.append(idx + start)
        start += len(level)
    if not candidates:
        return matched
    cand = torch.cat(candidates)  # (C, G)
    cand_ious = ious.gather(0, cand)
    thresh = cand_ious.mean(0) + cand_ious.std(0, unbiased=True)  # mmdetection uses torch.std (unbiased)
    positive = cand_ious >= thresh[None]

    cx, cy = anchor_ctr[cand, 0], anchor_ctr[cand, 1]  # (C, G)
    inside = (
        torch.stack([cx - gt_boxes[:, 0], cy - gt_boxes[:, 1], gt_boxes[:, 2] - cx, gt_boxes[:, 3] - cy], dim=0).amin(0)
        > eps
    )
    positive &= inside

    masked = torch.full_like(ious, -1.0)
    gt_index = torch.arange(num_gt, device=anchors.device).expand_as(cand)
    masked[cand[positive], gt_index[positive]] = ious[cand[positive], gt_index[positive]]
    best_iou, best_gt = masked.max(dim=1)
    matched[best_iou >= 0] = best_gt[best_iou >= 0]
    return matched


def centerness_targets(anchor_points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """FCOS/ATSS centerness sqrt(min(l,r)/max(l,r) · min(t,b)/max(t,b)) of points inside boxes."""
    left = anchor_points[:, 0] - boxes[:, 0]
    top = anchor_points[:, 1] - boxes[:, 1]
    right = boxes[:, 2] - anchor_points[:, 0]
    bottom = boxes[:, 3] - anchor_points[:, 1]
    lr = torch.stack([left, right], -1)
    tb = torch.stack([top, bottom], -1)
    ratio = (lr.amin(-1) / lr.amax(-1).clamp(min=1e-6)) * (tb.amin(-1) / tb.amax(-1).clamp(min=1e-6))
    return ratio.clamp(min=0).sqrt()
