"""Region–text scoring and the two box-free losses (image-text contrastive, classification CE).

* :class:`RegionTextLogits`: S = exp(s)·cos(f_P, f_T) + b, the detection/grounding logits [I].
* :func:`select_proposals`: image-text proposal selection [P] — objectness = max similarity to
  all concepts of the local batch, NMS, top-k.
* :func:`word_region_scores`: Eq. 2–3, s_T = mean over a caption's concepts of the max over an
  image's selected regions (1-to-1, text-to-image only).
* :func:`contrastive_loss` / :func:`classification_loss`: cross-entropy over cos/τ with label
  smoothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

__all__ = [
    "RegionTextLogits",
    "classification_loss",
    "contrastive_loss",
    "cosine",
    "max_cosine",
    "select_proposals",
    "word_region_scores",
]


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))  # fp16/bf16 → fp32, fp64 stays fp64


def cosine(regions: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """(…, D) × (M, D) → (…, M) cosine similarities (in fp32, or fp64 for fp64 inputs)."""
    return F.normalize(_at_least_fp32(regions), dim=-1) @ F.normalize(_at_least_fp32(texts), dim=-1).T


@torch.no_grad()
def max_cosine(regions: torch.Tensor, texts: torch.Tensor, max_elements: int = 1 << 26) -> torch.Tensor:
    """``cosine(regions, texts).amax(-1)`` in concept chunks, so a large batch concept list never
    materialises the whole (…, M) fp32 similarity tensor."""
    n = max(1, regions[..., 0].numel())
    step = max(1, max_elements // n)
    best = None
    for start in range(0, texts.shape[0], step):
        part = cosine(regions, texts[start : start + step]).amax(-1)
        best = part if best is None else torch.maximum(best, part)
    if best is None:
        raise ValueError("max_cosine needs at least one text")
    return best


class RegionTextLogits(nn.Module):
    """Learnable scale and bias on region–text similarity; bias starts at the focal prior."""

    def __init__(self, scale_init: float = math.log(1 / 0.07), prior: float = 0.01, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.logit_scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.bias = nn.Parameter(torch.tensor(-math.log((1 - prior) / prior)))

    def forward(self, regions: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        sim = cosine(regions, texts) if self.normalize else regions.float() @ texts.float().T
        return sim * self.logit_scale.exp().clamp(max=100.0) + self.bias


@torch.no_grad()
def select_proposals(
    boxes: torch.Tensor, objectness: torch.Tensor, *, top_k: int, nms_iou: float, pre_nms: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the anchor indices of the ``top_k`` best boxes surviving NMS.

    Returns ``index`` (B, top_k) and ``valid`` (B, top_k); invalid slots (fewer survivors) point
    at anchor 0 and must be masked. Non-differentiable: gradients flow through the embeddings
    gathered at these indices.
    """
    b, k = objectness.shape
    n = min(pre_nms, k)
    scores, cand = objectness.float().topk(n, dim=1)  # (B, n)
    cand_boxes = boxes.float().gather(1, cand[..., None].expand(b, n, 4))
    image_id = torch.arange(b, device=boxes.device).repeat_interleave(n)
    keep = batched_nms(cand_boxes.reshape(-1, 4), scores.reshape(-1), image_id, nms_iou)  # sorted by score
    index = torch.zeros((b, top_k), dtype=torch.long, device=boxes.device)
    valid = torch.zeros((b, top_k), dtype=torch.bool, device=boxes.device)
    kept_image = image_id[keep]
    for i in range(b):
        mine = keep[kept_image == i][:top_k]
        index[i, : len(mine)] = cand.reshape(-1)[mine]
        valid[i, : len(mine)] = True
    return index, valid


def word_region_scores(
    texts: torch.Tensor, caption_concepts: list[list[int]], regions: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """s_T (C, N): caption c against image n = mean_j∈c max_k cos(t_j, r_nk) over valid regions.

    ``texts`` (M, D) concept embeddings; ``caption_concepts[c]`` indexes the rows of caption c;
    ``regions`` (N, k, D) the selected region embeddings of N images, ``valid`` (N, k).
    """
    sim = cosine(regions, texts)  # (N, k, M)
    sim = sim.masked_fill(~valid[..., None], float("-inf"))
    best = sim.amax(dim=1)  # (N, M): each concept's best region per image
    weights = torch.zeros((len(caption_concepts), texts.shape[0]), dtype=best.dtype, device=texts.device)
    for c, rows in enumerate(caption_concepts):
        if not rows:
            raise ValueError(f"caption {c} has no concepts")
        weights[c, rows] = 1.0 / len(rows)
    return weights @ best.T


def contrastive_loss(
    scores: torch.Tensor, targets: torch.Tensor, *, tau: float = 0.5, label_smoothing: float = 0.1
) -> torch.Tensor:
    """Text-to-image InfoNCE (Eq. 5): each caption must pick its own image among all images."""
    return F.cross_entropy(scores / tau, targets, label_smoothing=label_smoothing)


def classification_loss(
    region: torch.Tensor,
    class_texts: torch.Tensor,
    targets: torch.Tensor,
    *,
    tau: float = 0.5,
    label_smoothing: float = 0.1,
) -> torch.Tensor:
    """IN1k variant [A]: the top-1 region's cosine to every class embedding / τ, cross-entropy."""
    return F.cross_entropy(cosine(region, class_texts) / tau, targets, label_smoothing=label_smoothing)
