"""What every transformers zero-shot detector adapter shares: offline loading, pad-free image batching,
exact (box, class) top-k, box scaling/clipping, and a weights+config identity hash.

Why pad-free batching: a processor that pads a batch to its largest image changes what the backbone
sees, so a batched run would not equal a one-image-at-a-time run. We preprocess each image on its
own and stack only images whose tensors have the same shape; fixed-size models (OWL, OmDet) get one
batch, variable-size ones (Grounding DINO) get one batch per distinct processed size.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_convert

from detclip_bench.adapters.base import Prediction
from detclip_bench.errors import DataError
from detclip_bench.provenance import weights_fingerprint

__all__ = [
    "HFDetector",
    "HFOptions",
    "ImageBatch",
    "ScoreBlock",
    "check_prompts",
    "load_pretrained",
    "read_model_type",
    "scale_cxcywh",
    "select_topk",
    "topk_box_class",
]


@dataclass(frozen=True)
class HFOptions:
    """Run-time knobs every adapter takes; they are part of :meth:`HFDetector.identity`."""

    device: str = "cpu"
    batch_size: int = 8  # images per forward pass (an upper bound; see the module docstring)


def _looks_like_path(source: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else that does not exist is a missing directory."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source


def _check_source(source: str) -> None:
    """A missing local directory gets a clear message instead of a hub lookup error."""
    if Path(source).expanduser().exists():
        if not Path(source).expanduser().is_dir():
            raise DataError(source, "model", "expected a model directory (save_pretrained output), got a file")
        return
    if _looks_like_path(source):
        raise DataError(source, "model", "model directory does not exist")


def read_model_type(source: str) -> str:
    """``config.json``'s ``model_type`` of a local dir or a hub id already in the HF cache (never downloads)."""
    from transformers import AutoConfig

    _check_source(source)
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise DataError(
            source,
            "config.json",
            "cannot read the model config offline: not a local model directory and not in the Hugging Face "
            f"cache (nothing is downloaded at run time) ({type(exc).__name__}: {str(exc).splitlines()[0]})",
        ) from None
    return str(config.model_type)


def load_pretrained(source: str, model_cls: Any, processor_cls: Any) -> tuple[Any, Any]:
    """Load model + processor from a local dir or the HF cache, offline, turning library errors into DataError."""
    _check_source(source)
    try:
        model = model_cls.from_pretrained(source, local_files_only=True)
        processor = processor_cls.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise DataError(
            source, "model", f"cannot load {model_cls.__name__} offline ({type(exc).__name__}: {exc})"
        ) from None
    return model.eval(), processor


def options_from_strings(options_cls: type[HFOptions], values: dict[str, str]) -> dict[str, Any]:
    """``--model-option key=value`` strings → typed fields of ``options_cls`` (unknown keys are errors)."""
    hints = typing.get_type_hints(options_cls)
    out: dict[str, Any] = {}
    for key, text in values.items():
        if key not in hints or key == "device":
            known = ", ".join(sorted(k for k in hints if k != "device"))
            raise DataError("--model-option", key, f"unknown option for {options_cls.__name__}; known: {known}")
        out[key] = _convert(key, text, hints[key])
    return out


def _convert(key: str, text: str, tp: Any) -> Any:
    """One option string as the field's type: a Literal's values, ``X | None`` ("none" → None), int, float, str."""
    if typing.get_origin(tp) is typing.Literal:
        if text not in typing.get_args(tp):
            raise DataError("--model-option", key, f"{text!r} is not one of {typing.get_args(tp)}")
        return text
    args = typing.get_args(tp)
    if type(None) in args:
        if text.lower() in ("none", "null"):
            return None
        tp = next(t for t in args if t is not type(None))
    try:
        return tp(text)
    except (TypeError, ValueError) as exc:
        raise DataError("--model-option", key, f"{text!r} is not a {tp.__name__}: {exc}") from None


def processor_settings(processor: Any) -> dict:
    """The image processor's (and tokenizer's) JSON-able settings: what preprocessing the numbers saw."""
    out: dict[str, Any] = {}
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None:
        out["image_processor"] = json.loads(image_processor.to_json_string())
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        out["tokenizer"] = {
            "class": type(tokenizer).__name__,
            "model_max_length": int(tokenizer.model_max_length) if tokenizer.model_max_length < 1e9 else None,
        }
    return out


def check_prompts(prompts: Sequence[str]) -> list[str]:
    prompts = [str(p) for p in prompts]
    if not prompts:
        raise ValueError("predict() needs at least one prompt")
    bad = [i for i, p in enumerate(prompts) if not p.strip()]
    if bad:
        raise ValueError(f"empty prompt(s) at index {bad[:10]}")
    return prompts


@dataclass
class ImageBatch:
    """Images (by index into the caller's list) whose processed tensors share one shape."""

    indices: list[int]
    inputs: dict[str, torch.Tensor]
    sizes: list[tuple[int, int]]  # original (height, width) per image


def iter_image_batches(
    images: Sequence, preprocess: Callable[[Any], dict[str, torch.Tensor]], batch_size: int, device: str
) -> Iterator[ImageBatch]:
    """Preprocess images one by one, group equal shapes (first-seen order), yield stacked batches."""
    groups: dict[tuple, list[tuple[int, dict[str, torch.Tensor], tuple[int, int]]]] = {}
    for index, image in enumerate(images):
        image = image.convert("RGB") if getattr(image, "mode", "RGB") != "RGB" else image
        tensors = preprocess(image)
        key = tuple((k, tuple(v.shape)) for k, v in sorted(tensors.items()))
        groups.setdefault(key, []).append((index, tensors, (image.height, image.width)))
        if len(groups[key]) == batch_size:
            yield _stack(groups.pop(key), device)
    for group in groups.values():
        yield _stack(group, device)


def _stack(group: list, device: str) -> ImageBatch:
    keys = group[0][1].keys()
    inputs = {k: torch.cat([tensors[k] for _, tensors, _ in group]).to(device) for k in keys}
    return ImageBatch([i for i, _, _ in group], inputs, [size for _, _, size in group])


def scale_cxcywh(boxes: torch.Tensor, scale_wh: tuple[float, float]) -> torch.Tensor:
    """Normalised cxcywh (N, 4) → xyxy pixels, x by ``scale_wh[0]`` and y by ``scale_wh[1]``."""
    xyxy = box_convert(boxes.float(), "cxcywh", "xyxy")
    return xyxy * torch.tensor([scale_wh[0], scale_wh[1], scale_wh[0], scale_wh[1]], dtype=xyxy.dtype)


def topk_box_class(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k (box, class) pairs of a (N, C) score matrix, best first, ties broken by flat index.

    Returns (box index, class index, score). Exactly a stable descending sort truncated at k, but
    only the candidates tied with or above the k-th score are sorted (LVIS: 3600 × 1203 scores).
    """
    flat = scores.reshape(-1).float()
    k = min(int(k), flat.numel())
    if k <= 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, flat.new_zeros(0)
    kth = torch.topk(flat, k, sorted=False).values.min()
    candidates = torch.nonzero(flat >= kth).reshape(-1)
    order = torch.sort(flat[candidates], descending=True, stable=True).indices[:k]
    chosen = candidates[order]
    num_classes = scores.shape[-1]
    return chosen // num_classes, chosen % num_classes, flat[chosen]


def make_prediction(
    boxes_px: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]
) -> Prediction:
    """Clip xyxy pixel boxes to the (height, width) image and wrap as a :class:`Prediction`."""
    height, width = size
    boxes = boxes_px.detach().float().cpu().clone()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return Prediction(
        boxes=boxes.numpy(),
        scores=scores.detach().float().cpu().clamp(0, 1).numpy(),
        labels=labels.detach().cpu().numpy().astype(np.int64),
    )


@dataclass
class ScoreBlock:
    """Scores of every (box, class) pair of one forward pass over one slice of the vocabulary.

    ``scores`` (N, C_block) are probabilities in [0, 1]; ``boxes`` (N, 4) xyxy pixels (not yet clipped);
    column j is prompt ``class_offset + j``. Chunked models return one block per vocabulary pass.
    """

    scores: torch.Tensor
    boxes: torch.Tensor
    class_offset: int = 0


def select_topk(blocks: Sequence[ScoreBlock], k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Global top-k (box, class) pairs over all blocks → (boxes, scores, labels), best first.

    Exact: the global top-k is contained in the union of each block's top-k. Ties keep block order,
    then flat (box, class) order, so the result does not depend on how images were batched.
    """
    boxes, scores, labels = [], [], []
    for block in blocks:
        box_idx, cls_idx, top = topk_box_class(block.scores.float().cpu(), k)
        boxes.append(block.boxes.float().cpu()[box_idx])
        scores.append(top)
        labels.append(cls_idx + block.class_offset)
    boxes_t, scores_t, labels_t = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
    if len(blocks) > 1:
        order = torch.sort(scores_t, descending=True, stable=True).indices[:k]
        boxes_t, scores_t, labels_t = boxes_t[order], scores_t[order], labels_t[order]
    return boxes_t, scores_t, labels_t


class HFDetector:
    """Base of the transformers adapters: subclasses encode prompts once and score one image batch.

    Subclass contract: ``_encode_prompts(prompts) -> state`` (text side, computed once per predict call)
    and ``_score_batch(batch, state) -> list[list[ScoreBlock]]`` (per image, one block per vocabulary pass).
    """

    options_cls: type[HFOptions] = HFOptions  # subclasses name their own options dataclass

    def __init__(self, model: Any, processor: Any, source: str, options: HFOptions | None = None) -> None:
        self.options = options or self.options_cls()
        self.model = model.to(self.options.device).eval()
        self.processor = processor
        self.source = source
        self.name = f"hf:{source}"
        self._identity: str | None = None

    @classmethod
    def load(
        cls,
        source: str,
        options: HFOptions | None = None,
        *,
        device: str | None = None,
        overrides: dict[str, str] | None = None,
    ) -> HFDetector:
        """This adapter from a local dir or the HF cache, offline; the ``MODELS`` entry of every ``hf:`` model type.

        ``device`` (if given) overrides ``options.device`` and ``overrides`` (``--model-option`` strings) the
        other option fields.
        """
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        options = options or cls.options_cls()
        if overrides:
            options = replace(options, **options_from_strings(cls.options_cls, overrides))
        if device is not None:
            options = replace(options, device=str(device))
        model, processor = load_pretrained(source, AutoModelForZeroShotObjectDetection, AutoProcessor)
        return cls(model, processor, source, options)

    def settings(self) -> dict:
        """Everything besides weights and config that changes predictions (hashed into identity, so into the
        prediction cache key): the adapter's options, the processor's settings and the transformers version,
        which changes preprocessing between releases (OWLv2's padding, transformers PR #41938)."""
        import transformers

        return {
            "adapter": type(self).__name__,
            **{k: v for k, v in asdict(self.options).items() if k != "device"},
            "processor": processor_settings(self.processor),
            "transformers": transformers.__version__,
        }

    def provenance(self) -> dict:
        """What results.json records under ``model_provenance``: the settings that produced the numbers."""
        return {"adapter": self.settings()}

    @property
    def device(self) -> str:
        return self.options.device

    def identity(self) -> str:
        """sha256 over the adapter settings, the model config and every weight (see ``weights_fingerprint``)."""
        if self._identity is None:
            self._identity = weights_fingerprint(self.model.state_dict(), self.model.config.to_dict(), self.settings())
        return self._identity

    def _preprocess(self, image: Any) -> dict[str, torch.Tensor]:
        return dict(self.processor.image_processor(images=image, return_tensors="pt"))

    def _encode_prompts(self, prompts: list[str]) -> Any:
        raise NotImplementedError

    def _score_batch(self, batch: ImageBatch, state: Any) -> list[list[ScoreBlock]]:
        raise NotImplementedError

    def _select(self, blocks: list[ScoreBlock], k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-k over (box, class); OmDet overrides this to apply its class-wise NMS first."""
        return select_topk(blocks, k)

    @torch.inference_mode()
    def predict(
        self,
        images: Sequence,
        prompts: Sequence[str],
        *,
        max_dets_per_image: int = 100,
        score_thresh: float | None = None,
    ) -> list[Prediction]:
        prompts = check_prompts(prompts)
        state = self._encode_prompts(prompts)
        results: list[Prediction | None] = [None] * len(images)
        for batch in iter_image_batches(images, self._preprocess, self.options.batch_size, self.options.device):
            for index, size, blocks in zip(batch.indices, batch.sizes, self._score_batch(batch, state), strict=True):
                boxes, scores, labels = self._select(blocks, max_dets_per_image)
                if score_thresh is not None:
                    above = scores > score_thresh
                    boxes, scores, labels = boxes[above], scores[above], labels[above]
                results[index] = make_prediction(boxes, scores, labels, size)
        return results  # type: ignore[return-value]
