"""Decoding around the dense detector: pre- and post-processing shared by :meth:`DetCLIPv2.predict` and exports.

The dense part of the detector (backbone → FPN → head → region–text class probability) is what an export
freezes into a graph; everything around it lives here, so the PyTorch model and an exported graph (ONNX
Runtime, TorchScript, ``torch.export``) run exactly the same code before and after it:

* :func:`preprocess_images`: PIL RGB images → one normalised, zero-padded batch ``(B, 3, H, W)`` plus each
  image's resize factor. Each image is resized keeping its aspect by the largest factor with long side ≤
  ``test_size[0]`` and short side ≤ ``test_size[1]`` (PIL's default bicubic ``Image.resize``, sizes rounded),
  scaled to 0–1, normalised with ``pixel_mean`` / ``pixel_std``, then zero-padded bottom/right to the
  batch's largest height and width (at least ``min_hw``), rounded up to a multiple of ``size_divisor``;
  :func:`run_dense_prepared` only batches images of the same padded shape, so no image gets extra padding.
* :func:`score_outputs`: the head's outputs → ``class_prob`` (B, K, M) = sigmoid(exp(s)·cos(f_P, f_T) + b),
  ``centerness`` (B, K) = sigmoid(centerness logit) and ``deltas`` (B, K, 4), all float32. K runs over the
  FPN levels P3, P4, … one after the other, each row-major over its ``(h, w)`` grid.
* :func:`level_sizes` / :func:`anchors_for`: the per-level grids and anchors of a padded input.
* :func:`postprocess_detections`: one image's dense outputs → a :class:`Prediction` (threshold and per-level
  top-k on the class probability, × centerness, class-wise NMS, rescale to original pixels, clip).
* :func:`prepare_image` / :class:`ImageTransform`: one image → a :class:`PreparedImage` (resized, normalised,
  padded as if alone); the evaluation loop runs it in DataLoader workers.
* :func:`run_dense_prepared`: prepared images grouped by padded shape, chunks of ``batch_size``, a dense
  forward (any callable), postprocess.

:class:`InferenceSettings` carries every number these need; an export writes it into its sidecar JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torchvision.ops import batched_nms

from detclip_bench.adapters.base import Prediction
from reference_model.detclipv2.batching import image_batch, resize_scale
from reference_model.detclipv2.box_coder import DeltaBoxCoder, make_anchors

__all__ = [
    "INFERENCE_REVISION",
    "DenseForward",
    "ImageTransform",
    "InferenceSettings",
    "PreparedImage",
    "PreparedInputs",
    "anchors_for",
    "level_sizes",
    "postprocess_detections",
    "prepare_image",
    "preprocess_images",
    "run_dense_prepared",
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
    resized = [
        im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))))
        for im, s in zip(images, scales, strict=True)
    ]
    return image_batch(resized, size_divisor, min_hw, pixel_mean, pixel_std), scales


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


@dataclass(frozen=True)
class PreparedImage:
    """One image ready for the dense forward: ``pixels`` (3, H, W) float32, normalised and zero-padded to its own
    padded shape (as if alone in its batch), the resize factor ``scale`` and the original ``orig_size`` (w, h).

    :func:`prepare_image` makes it (in a DataLoader worker, off the forward's critical path); images of one
    padded shape are stacked for a forward exactly as :func:`preprocess_images` would have padded them together.
    """

    pixels: torch.Tensor
    scale: float
    orig_size: tuple[int, int]

    def pin_memory(self) -> PreparedImage:
        """A copy in page-locked memory (torch's DataLoader ``pin_memory=True`` calls this)."""
        return PreparedImage(self.pixels.pin_memory(), self.scale, self.orig_size)


def prepare_image(image, settings: InferenceSettings) -> PreparedImage:
    """A PIL RGB image → :class:`PreparedImage` under ``settings`` (resize, normalise, pad as if alone)."""
    batch, scales = preprocess_images(
        [image],
        settings.test_size,
        settings.pixel_mean,
        settings.pixel_std,
        settings.size_divisor,
        settings.fixed_size or (0, 0),
    )
    if settings.fixed_size is not None and tuple(batch.shape[-2:]) != tuple(settings.fixed_size):
        raise ValueError(
            f"a resized image does not fit the fixed input size {settings.fixed_size} (H, W): "
            f"it pads to {tuple(batch.shape[-2:])}; export with a larger --image-size"
        )
    return PreparedImage(batch[0], scales[0], tuple(image.size))


class ImageTransform:
    """``image -> PreparedImage`` under fixed settings: a picklable callable that DataLoader workers run
    (what a detector's ``input_transform()`` returns)."""

    def __init__(self, settings: InferenceSettings) -> None:
        self.settings = settings

    def __call__(self, image) -> PreparedImage:
        return prepare_image(image, self.settings)


class PreparedInputs:
    """``predict`` for a detector that offers ``input_transform()`` and ``predict_inputs()``: the images prepared
    here, in this process (the evaluation loop prepares them in its workers and calls ``predict_inputs``)."""

    def predict(
        self,
        images: Sequence,
        prompts: Sequence[str],
        *,
        max_dets_per_image: int | None = None,
        score_thresh: float | None = None,
    ) -> list[Prediction]:
        transform = self.input_transform()
        inputs = [transform(image) for image in images]
        return self.predict_inputs(inputs, prompts, max_dets_per_image=max_dets_per_image, score_thresh=score_thresh)


def _stacked(pixels: list[torch.Tensor], pin: bool) -> torch.Tensor:
    """Same-shape images as one batch; in page-locked memory when ``pin`` (then copied to the GPU without
    blocking the host)."""
    out = torch.empty((len(pixels), *pixels[0].shape), dtype=pixels[0].dtype, pin_memory=pin)
    return torch.stack(pixels, out=out)


def run_dense_prepared(
    forward: DenseForward,
    inputs: Sequence[PreparedImage],
    settings: InferenceSettings,
    *,
    thresh: float,
    max_dets: int,
    coder: DeltaBoxCoder | None = None,
    pin: bool = False,
) -> list[Prediction]:
    """Prepared images grouped by padded shape, ``settings.batch_size`` at a time → ``forward`` →
    :func:`postprocess_detections` per image; results in input order.

    Only images of the same padded shape share a forward, so every image is padded exactly as if it were alone:
    padding changes what the backbone sees (GroupNorm statistics, Swin windows), and a batch padded to its
    largest image would make a score depend on the batch size and on which images share a batch.
    ``forward`` gets the CPU batch (page-locked with ``pin``) and returns tensors on any device.
    """
    coder = coder or DeltaBoxCoder(settings.box_coder_weights)
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, prepared in enumerate(inputs):
        groups.setdefault(tuple(prepared.pixels.shape), []).append(index)
    results: list[Prediction | None] = [None] * len(inputs)
    for indices in groups.values():
        for start in range(0, len(indices), settings.batch_size):
            chunk = indices[start : start + settings.batch_size]
            class_prob, centerness, deltas, anchors = forward(_stacked([inputs[i].pixels for i in chunk], pin))
            for row, i in enumerate(chunk):
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
                    scale=inputs[i].scale,
                    orig_size=inputs[i].orig_size,
                )
    return results  # type: ignore[return-value]
