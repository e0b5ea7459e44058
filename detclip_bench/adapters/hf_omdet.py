"""OmDet-Turbo as a :class:`Detector`: class-index logits, the model's own class-wise NMS.

OmDet-Turbo encodes every class as its own sentence (so its logits are already per class, unlike
Grounding DINO's per-token ones) plus one "task" sentence ("Detect a, b, c.") that conditions the
decoder. The task is one CLIP text of at most 77 tokens: for a large vocabulary the processor
truncates it, which we report instead of hiding. Post-processing follows the model's processor
(top ``num_queries`` (box, class) pairs, class-wise NMS at ``nms_threshold``, clip), but keeps up
to ``max_dets_per_image`` detections and never drops low scores: thresholds are the metric's job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torchvision.ops import batched_nms

from detclip_bench.adapters.hf_common import (
    HFDetector,
    HFOptions,
    ImageBatch,
    ScoreBlock,
    scale_cxcywh,
    select_topk,
)

__all__ = ["OmDetDetector", "OmDetOptions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OmDetOptions(HFOptions):
    nms_threshold: float | None = 0.5  # the processor's default; None keeps every (box, class) pair
    task_template: str = "Detect {}."  # the processor's default task sentence


class OmDetDetector(HFDetector):
    options_cls = OmDetOptions

    def __init__(self, model: Any, processor: Any, source: str, options: OmDetOptions | None = None) -> None:
        super().__init__(model, processor, source, options)
        self.max_text_len = int(self.model.config.text_config.max_position_embeddings)

    def _tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.processor.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.max_text_len, return_tensors="pt"
        )
        return {
            "input_ids": enc["input_ids"].to(self.options.device),
            "attention_mask": enc["attention_mask"].to(self.options.device),
        }

    def _encode_prompts(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        task = self.options.task_template.format(", ".join(prompts))
        n_task = len(self.processor.tokenizer(task)["input_ids"])
        if n_task > self.max_text_len:
            log.warning(
                "OmDet-Turbo task sentence for %d classes has %d tokens and is truncated to %d: classes past the "
                "cut still get scores (each is encoded on its own) but do not condition the decoder's task",
                len(prompts),
                n_task,
                self.max_text_len,
            )
        long = sum(n > self.max_text_len for n in map(len, self.processor.tokenizer(prompts)["input_ids"]))
        if long:
            log.warning(
                "%d prompts exceed OmDet-Turbo's %d-token text limit and are truncated", long, self.max_text_len
            )
        classes, tasks = self._tokens(prompts), self._tokens([task])
        return {
            "classes_input_ids": classes["input_ids"],
            "classes_attention_mask": classes["attention_mask"],
            "tasks_input_ids": tasks["input_ids"],
            "tasks_attention_mask": tasks["attention_mask"],
        }

    def _score_batch(self, batch: ImageBatch, text: dict[str, torch.Tensor]) -> list[list[ScoreBlock]]:
        n, num_classes = len(batch.indices), text["classes_input_ids"].shape[0]
        out = self.model(
            pixel_values=batch.inputs["pixel_values"],
            classes_input_ids=text["classes_input_ids"].repeat(n, 1),
            classes_attention_mask=text["classes_attention_mask"].repeat(n, 1),
            tasks_input_ids=text["tasks_input_ids"].expand(n, -1),
            tasks_attention_mask=text["tasks_attention_mask"].expand(n, -1),
            classes_structure=torch.full((n,), num_classes, dtype=torch.long),
        )
        scores = out.decoder_class_logits[..., :num_classes].sigmoid()  # (B, Q, C)
        return [
            [ScoreBlock(scores[i], scale_cxcywh(out.decoder_coord_logits[i], (width, height)))]
            for i, (height, width) in enumerate(batch.sizes)
        ]

    def _select(self, blocks: list[ScoreBlock], k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.options.nms_threshold is None:
            return select_topk(blocks, k)
        (block,) = blocks
        # as the processor: the top max(num_queries, k) (box, class) pairs, then class-wise NMS
        boxes, scores, labels = select_topk(blocks, max(block.scores.shape[0], k))
        keep = batched_nms(boxes, scores, labels, self.options.nms_threshold)[:k]
        return boxes[keep], scores[keep], labels[keep]
