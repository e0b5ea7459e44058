"""Decoding around the dense detector: pre- and post-processing shared by :meth:`DetCLIPv2.predict` and exports.

The dense part of the detector (backbone → FPN → head → region–text class probability) is what an export
freezes into a graph; everything around it lives here, so the PyTorch model and an exported graph (ONNX
Runtime, TorchScript, ``torch.export``) run exactly the same code before and after it:

* :func:`preprocess_images`: PIL RGB images → one normalised, zero-padded batch ``(B, 3, H, W)`` plus each
  image's resize factor. Each image is resized keeping its aspect by the largest factor with long side ≤
  ``test_size[0]`` and short side ≤ ``test_size[1]`` (PIL's default bicubic ``Image.resize``, sizes rounded),
  scaled to 0–1, normalised with ``pixel_mean`` / ``pixel_std``, then zero-padded bottom/right to the
  batch's largest height and width (at least ``min_hw``), rounded up to a multiple of ``size_divisor``;
  :func:`run_dense_detector` only batches images of the same padded shape, so no image gets extra padding.
* :func:`score_outputs`: the head's outputs → ``class_prob`` (B, K, M) = sigmoid(exp(s)·cos(f_P, f_T) + b),
  ``centerness`` (B, K) = sigmoid(centerness logit) and ``deltas`` (B, K, 4), all float32. K runs over the
  FPN levels P3, P4, … one after the other, each row-major over its ``(h, w)`` grid.
* :func:`level_sizes` / :func:`anchors_for`: the per-level grids and anchors of a padded input.
* :func:`postprocess_detections`: one image's dense outputs → a :class:`Prediction` (threshold and per-level
  top-k on the class probability, × centerness, class-wise NMS, rescale to original pixels, clip).
* :func:`run_dense_detector`: the loop ``predict`` runs: images grouped by padded shape, chunks of
  ``batch_size``, preprocess, a dense forward (any callable), postprocess.

:class:`InferenceSettings` carries every number these need; an export writes it into its sidecar JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torchvision.ops import batched_nms

from detclip_bench.adapters.base import Prediction
from reference_model.detclipv2.batching import pad_stack, resize_scale, to_tensor
from reference_model.detclipv2.box_coder import DeltaBoxCoder, make_anchors

__all__ = [
    "INFERENCE_REVISION",
    "DenseForward",
    "InferenceSettings",
    "anchors_for",
    "level_sizes",
    "padded_shape",
    "postprocess_detections",
    "preprocess_images",
    "run_dense_detector",
    "score_outputs",
]

# bumped whenever a change to this module changes predictions, so no prediction cache made before is reused
# (2: images are batched only with images of the same padded shape, i.e. padded as if alone)
INFERENCE_REVISION = 2

# a dense forward: padded batch → (class_prob (B, K, M), centerness (B, K), deltas (B, K, 4), per-level anchors)
DenseForward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]]


@dataclass(frozen=True)
class InferenceSettings:
    """Every pre/post-processing number of ``predict`` (from a :class:`DetCLIPv2Config`, or an export's sidecar).

    ``fixed_size`` (H, W): pad every image to exactly this size (a graph exported with a fixed input size);
    None pads each image to its own resized size rounded up to ``size_divisor``, as ``predict`` does.
    """

    test_size: tuple[int, int]  # (max long side, short side)
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    size_divisor: int
    batch_size: int  # at most this many images of one padded shape per dense forward (predict_batch_size)
    strides: tuple[int, ...]
    anchor_scale: float
    anchor_center_offset: float
    box_coder_weights: tuple[float, float, float, float]
    pre_nms_topk: int
    nms_iou: float
    score_thresh: float
    max_dets_per_image: int
    fixed_size: tuple[int, int] | None = None

    @classmethod
    def from_config(cls, cfg, fixed_size: tuple[int, int] | None = None) -> InferenceSettings:
        return cls(
            test_size=tuple(cfg.test_size),
            pixel_mean=tuple(cfg.pixel_mean),
            pixel_std=tuple(cfg.pixel_std),
            size_divisor=cfg.size_divisor,
            batch_size=cfg.predict_batch_size,
            strides=tuple(cfg.strides),
            anchor_scale=cfg.anchor_scale,
            anchor_center_offset=cfg.anchor_center_offset,
            box_coder_weights=tuple(cfg.box_coder_weights),
            pre_nms_topk=cfg.pre_nms_topk,
            nms_iou=cfg.nms_iou,
            score_thresh=cfg.score_thresh,
            max_dets_per_image=cfg.max_dets_per_image,
            fixed_size=None if fixed_size is None else tuple(fixed_size),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InferenceSettings:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown InferenceSettings keys {unknown}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def preprocess_images(
    images: Sequence,
    test_size: tuple[int, int],
    pixel_mean: Sequence[float],
    pixel_std: Sequence[float],
    size_divisor: int,
    min_hw: tuple[int, int] = (0, 0),
) -> tuple[torch.Tensor, list[float]]:
    """PIL RGB images → ``(batch (B, 3, H, W) float32, resize factor per image)``; see the module docstring."""
    scales = [resize_scale(*im.size, test_size) for im in images]
    tensors = [
        to_tensor(
            im.resize((max(1, round(im.width * s)), max(1, round(im.height * s)))),
            pixel_mean,
            pixel_std,
        )
        for im, s in zip(images, scales, strict=True)
    ]
    return pad_stack(tensors, size_divisor, min_hw), scales


def score_outputs(head, outputs, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``class_prob`` (B, K, M), ``centerness`` (B, K) and ``deltas`` (B, K, 4) in float32 from :class:`HeadOutputs`."""
    class_prob = head.logits(outputs.embeddings.float(), texts.float()).sigmoid()
    return class_prob, outputs.centerness.float().sigmoid(), outputs.deltas.float()


def level_sizes(height: int, width: int, strides: Sequence[int]) -> list[tuple[int, int]]:
    """The ``(h, w)`` grid of each FPN level for a padded input of ``height`` × ``width`` (a multiple of 32):
    ``ceil(size / stride)`` (P3–P5 divide exactly; P6/P7 are stride-2, padding-1 3×3 convs, i.e. ceil)."""
    return [(-(-height // s), -(-width // s)) for s in strides]


def anchors_for(height: int, width: int, settings: InferenceSettings, device="cpu") -> list[torch.Tensor]:
    """Per-level anchors of a padded ``height`` × ``width`` input, as ``DetCLIPv2.dense`` makes them."""
    return make_anchors(
        level_sizes(height, width, settings.strides),
        settings.strides,
        settings.anchor_scale,
        settings.anchor_center_offset,
        device=device,
    )


def postprocess_detections(
    class_prob: torch.Tensor,
    centerness: torch.Tensor,
    deltas: torch.Tensor,
    anchors: list[torch.Tensor],
    *,
    coder: DeltaBoxCoder,
    pre_nms_topk: int,
    nms_iou: float,
    thresh: float,
    max_dets: int,
    scale: float,
    orig_size: tuple[int, int],
) -> Prediction:
    """One image: per level, (anchor, class) pairs with class probability > ``thresh``, the top
    ``pre_nms_topk`` of them by class probability; score = probability × centerness; class-wise NMS at
    ``nms_iou``; the best ``max_dets``; boxes divided by ``scale`` and clipped to ``orig_size`` (w, h)."""
    num_classes = class_prob.shape[1]
    all_boxes, all_scores, all_labels, start = [], [], [], 0
    for level in anchors:
        s = class_prob[start : start + len(level)].flatten()
        keep = torch.nonzero(s > thresh).squeeze(1)
        s = s[keep]
        if len(s) > pre_nms_topk:
            s, top = s.topk(pre_nms_topk)
            keep = keep[top]
        anchor_idx, label = keep // num_classes, keep % num_classes
        all_boxes.append(coder.decode(deltas[start + anchor_idx], level[anchor_idx]))
        all_scores.append(s * centerness[start + anchor_idx])
        all_labels.append(label)
        start += len(level)
    boxes, sc, labels = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
    keep = batched_nms(boxes, sc, labels, nms_iou)[:max_dets]
    w, h = orig_size
    boxes = boxes[keep] / scale
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return Prediction(boxes=boxes.cpu().numpy(), scores=sc[keep].cpu().numpy(), labels=labels[keep].cpu().numpy())


def padded_shape(image, settings: InferenceSettings) -> tuple[int, int]:
    """The ``(H, W)`` an image is zero-padded to when it is alone in its batch (or the fixed export size)."""
    if settings.fixed_size is not None:
        return tuple(settings.fixed_size)
    s = resize_scale(*image.size, settings.test_size)
    h, w = max(1, round(image.height * s)), max(1, round(image.width * s))
    d = settings.size_divisor
    return -(-h // d) * d, -(-w // d) * d


def run_dense_detector(
    forward: DenseForward,
    images: Sequence,
    settings: InferenceSettings,
    *,
    thresh: float,
    max_dets: int,
    coder: DeltaBoxCoder | None = None,
) -> list[Prediction]:
    """``predict``'s loop: images grouped by padded shape, ``settings.batch_size`` at a time →
    :func:`preprocess_images` → ``forward`` → :func:`postprocess_detections` per image; results in input order.

    Only images of the same padded shape share a forward, so every image is padded exactly as if it were alone:
    padding changes what the backbone sees (GroupNorm statistics, Swin windows), and a batch padded to its
    largest image would make a score depend on the batch size and on which images share a batch.
    ``forward`` gets the CPU batch and returns tensors on any device.
    """
    coder = coder or DeltaBoxCoder(settings.box_coder_weights)
    min_hw = settings.fixed_size or (0, 0)
    groups: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(padded_shape(image, settings), []).append(index)
    results: list[Prediction | None] = [None] * len(images)
    for indices in groups.values():
        for start in range(0, len(indices), settings.batch_size):
            chunk = indices[start : start + settings.batch_size]
            batch, scales = preprocess_images(
                [images[i] for i in chunk],
                settings.test_size,
                settings.pixel_mean,
                settings.pixel_std,
                settings.size_divisor,
                min_hw,
            )
            if settings.fixed_size is not None and tuple(batch.shape[-2:]) != tuple(settings.fixed_size):
                raise ValueError(
                    f"a resized image does not fit the fixed input size {settings.fixed_size} (H, W): "
                    f"the batch pads to {tuple(batch.shape[-2:])}; export with a larger --image-size"
                )
            class_prob, centerness, deltas, anchors = forward(batch)
            for row, (i, s) in enumerate(zip(chunk, scales, strict=True)):
                results[i] = postprocess_detections(
                    class_prob[row],
                    centerness[row],
                    deltas[row],
                    anchors,
                    coder=coder,
                    pre_nms_topk=settings.pre_nms_topk,
                    nms_iou=settings.nms_iou,
                    thresh=thresh,
                    max_dets=max_dets,
                    scale=s,
                    orig_size=images[i].size,
                )
    return results  # type: ignore[return-value]
