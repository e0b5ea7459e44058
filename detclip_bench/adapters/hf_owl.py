"""OWLv2 / OWL-ViT as a :class:`Detector`, scoring every (patch box, class) pair.

OWL encodes each class as its own sentence (16 text positions in the released models), so a
vocabulary of any size needs no chunking: the text side is computed once per ``predict`` call, in
slices of ``text_batch_size`` classes, and the class head compares every image patch with every
class. We call the model's own ``image_embedder`` / ``class_predictor`` / ``box_predictor`` (the
pieces its ``forward`` is made of) instead of ``forward``, which would re-encode the text per image,
and we keep all per-class scores: the processor's post-processing keeps only the best class per box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from detclip_bench.adapters.hf_common import (
    HFDetector,
    HFOptions,
    ImageBatch,
    ScoreBlock,
    scale_cxcywh,
)

__all__ = ["OwlDetector", "OwlOptions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OwlOptions(HFOptions):
    text_batch_size: int = 256  # classes encoded per text forward


class OwlDetector(HFDetector):
    options_cls = OwlOptions

    def __init__(self, model: Any, processor: Any, source: str, options: OwlOptions | None = None) -> None:
        super().__init__(model, processor, source, options)
        self.base = getattr(self.model, self.model.base_model_prefix)
        self.max_text_len = int(self.model.config.text_config.max_position_embeddings)
        # OWLv2 pads images to a square at the bottom/right, so both axes scale by the longer side;
        # OWL-ViT stretches the image to a square, so each axis scales by its own length.
        self.pads_to_square = self.model.config.model_type == "owlv2"

    def _encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        tokenizer = self.processor.tokenizer
        lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=True)["input_ids"]]
        too_long = [p for p, n in zip(prompts, lengths, strict=True) if n > self.max_text_len]
        if too_long:
            log.warning(
                "%d of %d prompts exceed %s's %d-token text limit and are truncated (e.g. %r)",
                len(too_long),
                len(prompts),
                self.model.config.model_type,
                self.max_text_len,
                too_long[0],
            )
        embeds = []
        step = self.options.text_batch_size
        for start in range(0, len(prompts), step):
            text = tokenizer(
                prompts[start : start + step],
                padding="max_length",
                truncation=True,
                max_length=self.max_text_len,
                return_tensors="pt",
            ).to(self.options.device)
            pooled = self.base.get_text_features(input_ids=text["input_ids"], attention_mask=text["attention_mask"])
            pooled = getattr(pooled, "pooler_output", pooled)
            # the detection forward normalises the projected text embedding before its class head
            embeds.append(pooled / torch.linalg.norm(pooled, ord=2, dim=-1, keepdim=True))
        return torch.cat(embeds)

    def _score_batch(self, batch: ImageBatch, query_embeds: torch.Tensor) -> list[list[ScoreBlock]]:
        feature_map = self.model.image_embedder(pixel_values=batch.inputs["pixel_values"])[0]
        b, h, w, d = feature_map.shape
        image_feats = feature_map.reshape(b, h * w, d)
        queries = query_embeds.unsqueeze(0).expand(b, -1, -1)
        logits = self.model.class_predictor(image_feats, queries, None)[0]  # (B, patches, C)
        boxes = self.model.box_predictor(image_feats, feature_map)  # (B, patches, 4) normalised cxcywh
        out = []
        for i, (height, width) in enumerate(batch.sizes):
            scale = (max(height, width),) * 2 if self.pads_to_square else (width, height)
            out.append([ScoreBlock(logits[i].sigmoid(), scale_cxcywh(boxes[i], scale))])
        return out
