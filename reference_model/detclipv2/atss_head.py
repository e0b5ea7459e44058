"""ATSS head with region–text classification and the DetCLIPv2 deformable module.

Layout per FPN level (weights shared across levels, [I] where method.md says so):

* regression tower (``head_convs`` × conv3×3-GN-ReLU) → per-level ``Scale`` × delta conv,
  plus the centerness conv (ATSS puts centerness on the regression branch);
* deformable module [P]: a 3×3 conv on the regression tower predicts 18 offsets + 9 masks,
  which drive a modulated deformable 3×3 conv (DCNv2, ``torchvision.ops.DeformConv2d``'s weights, run by
  :func:`~reference_model.detclipv2.deform.modulated_deform_conv3x3`) over the FPN feature, so
  classification gradients also reach the regression tower;
* classification tower → a 3×3 projection to the D-dimensional region embedding f_P.

The head owns its loss (like torchvision's ``FCOSHead.compute_loss``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import DeformConv2d, generalized_box_iou_loss

from reference_model.detclipv2.alignment import FocalTargets, RegionTextLogits, focal_alignment_loss
from reference_model.detclipv2.assigner import atss_assign, centerness_targets
from reference_model.detclipv2.box_coder import DeltaBoxCoder, anchors_inside
from reference_model.detclipv2.deform import modulated_deform_conv3x3
from reference_model.detclipv2.distributed import mean_over_ranks

__all__ = ["ATSSHead", "HeadOutputs", "Scale"]


class Scale(nn.Module):
    """A learnable scalar per FPN level on the regression output."""

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _tower(channels: int, depth: int, groups: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.GroupNorm(groups, channels), nn.ReLU()]
    return nn.Sequential(*layers)


@dataclass
class HeadOutputs:
    """Dense predictions with all levels flattened and concatenated along K."""

    embeddings: torch.Tensor  # (B, K, D) region embeddings f_P
    deltas: torch.Tensor  # (B, K, 4)
    centerness: torch.Tensor  # (B, K) logits
    level_sizes: list[tuple[int, int]]


def _flatten(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, H·W, C)


class ATSSHead(nn.Module):
    def __init__(
        self,
        channels: int,
        num_levels: int,
        embed_dim: int,
        *,
        num_convs: int = 4,
        gn_groups: int = 32,
        deformable: bool = True,
        logit_scale_init: float = math.log(1 / 0.07),
        logit_bias_prior: float = 0.01,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.reg_tower = _tower(channels, num_convs, gn_groups)
        self.cls_tower = _tower(channels, num_convs, gn_groups)
        self.bbox_pred = nn.Conv2d(channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(channels, 1, 3, padding=1)
        self.embed = nn.Conv2d(channels, embed_dim, 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        self.deformable = deformable
        if deformable:
            self.offset_mask = nn.Conv2d(channels, 27, 3, padding=1)
            self.dcn = DeformConv2d(channels, channels, 3, padding=1, bias=False)
            self.dcn_norm = nn.Sequential(nn.GroupNorm(gn_groups, channels), nn.ReLU())
        self.logits = RegionTextLogits(logit_scale_init, logit_bias_prior, normalize)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.deformable:  # start as a plain conv with mask 0.5 (zero offsets), as DCNv2 does
            nn.init.zeros_(self.offset_mask.weight)
            nn.init.zeros_(self.offset_mask.bias)
            nn.init.normal_(self.dcn.weight, std=0.01)

    def forward_level(self, feat: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        reg = self.reg_tower(feat)
        deltas = self.scales[level](self.bbox_pred(reg))
        ctr = self.centerness(reg)
        cls_in = feat
        if self.deformable:
            om = self.offset_mask(reg)
            offset, mask = om[:, :18], om[:, 18:].sigmoid()
            deformed = modulated_deform_conv3x3(feat, offset.to(feat.dtype), mask.to(feat.dtype), self.dcn.weight)
            cls_in = self.dcn_norm(deformed)
        emb = self.embed(self.cls_tower(cls_in))
        return emb, deltas, ctr

    def forward(self, feats: list[torch.Tensor]) -> HeadOutputs:
        embs, deltas, ctrs = [], [], []
        for level, feat in enumerate(feats):
            e, d, c = self.forward_level(feat, level)
            embs.append(_flatten(e))
            deltas.append(_flatten(d))
            ctrs.append(_flatten(c)[..., 0])
        return HeadOutputs(
            embeddings=torch.cat(embs, 1),
            deltas=torch.cat(deltas, 1),
            centerness=torch.cat(ctrs, 1),
            level_sizes=[tuple(f.shape[-2:]) for f in feats],
        )

    def compute_loss(
        self,
        outputs: HeadOutputs,
        logits: torch.Tensor | None,
        anchors_per_level: list[torch.Tensor],
        gt_boxes: list[torch.Tensor],
        gt_labels: list[torch.Tensor],
        coder: DeltaBoxCoder,
        *,
        topk: int = 9,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        box_loss: bool = True,
        center_loss: bool = True,
        image_sizes: list[tuple[int, int]] | None = None,
        negative_mask: torch.Tensor | None = None,
        texts: torch.Tensor | None = None,
        max_elements: int = 1 << 24,
    ) -> dict[str, torch.Tensor]:
        """Focal alignment loss on S vs the ATSS targets G, plus GIoU and centerness on positives.

        ``logits`` (B, K, M) scores every anchor against every batch concept; ``gt_labels`` index
        its columns. Or ``logits=None`` and ``texts`` (M, D): the scores are
        ``self.logits(outputs.embeddings, texts)``, computed and differentiated in column chunks of at
        most ``max_elements`` (:func:`~reference_model.detclipv2.alignment.focal_alignment_loss`), so
        the global batch's concept list never materialises a (B, K, M) tensor; same value and gradient.
        Normalised by the positive count averaged over ranks (mmdetection habit);
        GIoU is weighted by the centerness target and normalised by its sum averaged over ranks,
        clamped at 1 (mmdetection's ``bbox_avg_factor``).

        ``image_sizes`` (h, w) per image: anchors centred in the batch padding are neither ATSS
        candidates nor focal negatives (mmdetection's valid flags). ``negative_mask`` (B, M) bool:
        where False, image b's unmatched anchors are not negatives for column m (federated LVIS
        labels, a variant of one of the image's positives); positives always count.
        """
        if (logits is None) == (texts is None):
            raise ValueError("compute_loss needs exactly one of logits (B, K, M) and texts (M, D)")
        anchors = torch.cat(anchors_per_level)
        device = outputs.embeddings.device
        inside = None if image_sizes is None else anchors_inside(anchors, image_sizes)
        pos_img, pos_anchor, pos_col, pos_gt_boxes = [], [], [], []
        for i, (boxes, labels) in enumerate(zip(gt_boxes, gt_labels, strict=True)):
            matched = atss_assign(anchors_per_level, boxes, topk, valid=None if inside is None else inside[i])
            pos = torch.nonzero(matched >= 0).squeeze(1)
            pos_img.append(torch.full_like(pos, i))
            pos_anchor.append(pos)
            pos_col.append(labels[matched[pos]].to(pos.device))
            pos_gt_boxes.append(boxes[matched[pos]])
        img_idx, anchor_idx, matched_boxes = torch.cat(pos_img), torch.cat(pos_anchor), torch.cat(pos_gt_boxes)
        num_pos = mean_over_ranks(torch.tensor(float(len(anchor_idx)), device=device)).clamp(min=1.0)
        targets = FocalTargets(
            img_idx,
            anchor_idx,
            torch.cat(pos_col),
            negative_mask=None if negative_mask is None else negative_mask.to(device),
            inside=inside,
            alpha=focal_alpha,
            gamma=focal_gamma,
        )
        if logits is not None:
            focal = targets.summed_loss(logits, 0)
        else:
            focal = focal_alignment_loss(outputs.embeddings, texts, self.logits, targets, max_elements=max_elements)
        losses = {"loss_align": focal / num_pos}
        if not (box_loss or center_loss):
            return losses
        pos_anchors = anchors[anchor_idx]
        anchor_points = (pos_anchors[:, :2] + pos_anchors[:, 2:]) / 2
        ctr_target = centerness_targets(anchor_points, matched_boxes)
        if box_loss:
            pred_boxes = coder.decode(outputs.deltas[img_idx, anchor_idx], pos_anchors)
            giou = generalized_box_iou_loss(pred_boxes, matched_boxes, reduction="none")
            weight_sum = mean_over_ranks(ctr_target.sum()).clamp(min=1.0)  # mmdetection clamps at 1
            losses["loss_giou"] = (giou * ctr_target).sum() / weight_sum
        if center_loss:
            bce = F.binary_cross_entropy_with_logits(
                outputs.centerness[img_idx, anchor_idx].float(), ctr_target, reduction="sum"
            )
            losses["loss_center"] = bce / num_pos
        return losses
