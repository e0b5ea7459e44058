"""Region–text scoring and the two box-free losses (image-text contrastive, classification CE).

* :class:`RegionTextLogits`: S = exp(s)·cos(f_P, f_T) + b, the detection/grounding logits [I].
* :func:`focal_alignment_loss`: the focal alignment loss over S in column chunks, so the global
  batch's M_B concepts never materialise a (B, K, M_B) tensor (memory, docs/method.md).
* :func:`select_proposals`: image-text proposal selection [P] — objectness = max similarity to
  all concepts of the local batch, NMS, top-k.
* :func:`word_region_scores`: Eq. 2–3, s_T = mean over a caption's concepts of the max over an
  image's selected regions (1-to-1, text-to-image only).
* :func:`contrastive_loss` / :func:`classification_loss`: cross-entropy over cos/τ with label
  smoothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, sigmoid_focal_loss

__all__ = [
    "FocalTargets",
    "RegionTextLogits",
    "classification_loss",
    "contrastive_loss",
    "cosine",
    "focal_alignment_loss",
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

    def prepare(self, regions: torch.Tensor, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two factors of the similarity (unit vectors in fp32 when ``normalize``), so a caller can
        score column chunks (:func:`focal_alignment_loss`) with the same arithmetic as :meth:`forward`."""
        if self.normalize:
            return F.normalize(_at_least_fp32(regions), dim=-1), F.normalize(_at_least_fp32(texts), dim=-1)
        return regions.float(), texts.float()

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=100.0)

    def forward(self, regions: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        r, t = self.prepare(regions, texts)
        return (r @ t.T) * self.scale() + self.bias


@dataclass(frozen=True)
class FocalTargets:
    """What the alignment loss needs besides the scores, without any (B, K, M) tensor.

    ``pos_img``, ``pos_anchor``, ``pos_col``: the positive (image, anchor, column) triples (ATSS);
    ``negative_mask`` (B, M) bool: may image b's unmatched anchors be negatives for column m;
    ``inside`` (B, K) bool: anchors centred in the image (others count for nothing).
    """

    pos_img: torch.Tensor
    pos_anchor: torch.Tensor
    pos_col: torch.Tensor
    negative_mask: torch.Tensor | None = None
    inside: torch.Tensor | None = None
    alpha: float = 0.25
    gamma: float = 2.0

    def dense_targets(self, shape: tuple[int, int, int], start: int, stop: int, like: torch.Tensor) -> torch.Tensor:
        """The 0/1 targets of columns ``[start, stop)`` as a (B, K, stop - start) tensor."""
        targets = like.new_zeros((shape[0], shape[1], stop - start))
        hit = (self.pos_col >= start) & (self.pos_col < stop)
        targets[self.pos_img[hit], self.pos_anchor[hit], self.pos_col[hit] - start] = 1.0
        return targets

    def summed_loss(self, logits: torch.Tensor, start: int) -> torch.Tensor:
        """Sigmoid focal loss of columns ``[start, start + logits.shape[-1])``, summed over what counts."""
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # fp16/bf16 → fp32; fp64 stays
        stop = start + logits.shape[-1]
        targets = self.dense_targets(tuple(logits.shape), start, stop, logits)
        focal = sigmoid_focal_loss(logits, targets, alpha=self.alpha, gamma=self.gamma, reduction="none")
        if self.negative_mask is None and self.inside is None:
            return focal.sum()
        counted = torch.ones_like(targets, dtype=torch.bool)
        if self.negative_mask is not None:
            counted = (targets > 0) | self.negative_mask[:, None, start:stop].to(targets.device)
        if self.inside is not None:
            counted = counted & self.inside[:, :, None]
        return torch.where(counted, focal, torch.zeros_like(focal)).sum()


class _ChunkedFocal(torch.autograd.Function):
    """Summed focal alignment loss over column chunks; each chunk's gradient is taken in the forward.

    Only one chunk's (B, K, c) scores and their autograd graph exist at a time, so memory grows with
    B·K·c, not with the M columns of the global batch; the saved gradients are those of the plain
    computation (the same operations per element), scaled by the incoming gradient in backward.
    """

    @staticmethod
    def forward(ctx, regions, texts, scale, bias, targets: FocalTargets, step: int):
        inputs = (regions, texts, scale, bias)
        need = [t.requires_grad for t in inputs]
        grads = [torch.zeros_like(t) if n else None for t, n in zip(inputs, need, strict=True)]
        total = regions.new_zeros((), dtype=torch.promote_types(regions.dtype, torch.float32))
        for start in range(0, texts.shape[0], step):
            with torch.enable_grad():
                leaves = [t.detach().requires_grad_(n) for t, n in zip(inputs, need, strict=True)]
                r, t, s, b = leaves
                t = t[start : start + step]
                loss = targets.summed_loss((r @ t.T) * s + b, start)
            wanted = [leaf for leaf, n in zip(leaves, need, strict=True) if n]
            if wanted:
                parts = iter(torch.autograd.grad(loss, wanted))
                for i, n in enumerate(need):
                    if n:
                        grads[i].add_(next(parts))
            total = total + loss.detach()
        ctx.save_for_backward(*(g if g is not None else torch.empty(0) for g in grads))
        ctx.need = need
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grads = [g * grad_out.to(g.dtype) if n else None for g, n in zip(ctx.saved_tensors, ctx.need, strict=True)]
        return (*grads, None, None)


def focal_alignment_loss(
    regions: torch.Tensor,
    texts: torch.Tensor,
    layer: RegionTextLogits,
    targets: FocalTargets,
    *,
    max_elements: int = 1 << 24,
) -> torch.Tensor:
    """Σ sigmoid focal loss of ``layer(regions, texts)`` against ``targets``, in column chunks of at most
    ``max_elements`` scores: the value and gradient of the plain (B, K, M) computation without its memory.

    ``regions`` (B, K, D), ``texts`` (M, D). The gradient is exact (the per-element arithmetic is the
    plain path's; only the order of the final sums differs, ~1e-7 relative in fp32).
    """
    r, t = layer.prepare(regions, texts)
    step = max(1, max_elements // max(1, r.shape[0] * r.shape[1]))
    return _ChunkedFocal.apply(r, t, layer.scale(), layer.bias, targets, step)


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
