"""Grounding DINO / MM Grounding DINO as a :class:`Detector`, with vocabulary chunking by token budget.

The model reads the whole vocabulary as one caption ("cat. remote control. zebra.") of at most
``config.max_text_len`` tokens (256 for the released models; LVIS needs ~4,300, see
IDEA-Research/GroundingDINO#129), and its logits are per *token*, not per class. So we

1. split the vocabulary into consecutive chunks whose caption fits the budget, never splitting a
   class (a class that alone does not fit is an error, not a silent truncation);
2. run one pass per chunk and turn token logits into a per-class score matrix: the class's token
   span is located from character offsets of its own text, and its score is the max (or mean) of
   the sigmoid over those tokens;
3. merge the chunks' (box, class) candidates into one top-k per image.

Classes in different chunks never see each other, exactly as in the multi-pass evaluation of the
original authors; a vocabulary that fits in one pass is scored in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from detclip_bench.adapters.hf_common import (
    HFDetector,
    HFOptions,
    ImageBatch,
    ScoreBlock,
    scale_cxcywh,
)

__all__ = ["GroundingDinoDetector", "GroundingDinoOptions", "TextChunk", "plan_chunks"]


@dataclass(frozen=True)
class GroundingDinoOptions(HFOptions):
    token_budget: int | None = None  # tokens per pass incl. [CLS]/[SEP]; None → the model's max_text_len
    token_reduce: Literal["max", "mean"] = "max"  # how a class's token scores become its score
    # at most this many classes per pass (GLIP's CHUNKED_EVALUATION 40, mmdetection's chunked_size=40);
    # None: as many as the token budget holds (joint prompting)
    max_classes_per_chunk: int | None = None


@dataclass
class TextChunk:
    """One pass of the vocabulary: its tokenised caption and each class's token span [start, end)."""

    class_offset: int
    spans: list[tuple[int, int]]
    text: dict[str, torch.Tensor]


def caption_of(classes: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The processor's caption format ("a. b.", lower-cased) and each class's character span in it."""
    parts, spans, pos = [], [], 0
    for name in classes:
        name = name.strip().lower()
        spans.append((pos, pos + len(name)))
        parts.append(name)
        pos += len(name) + 2  # ". "
    return ". ".join(parts) + ".", spans


def plan_chunks(
    token_counts: list[int], budget: int, prompts: list[str], max_classes: int | None = None
) -> list[range]:
    """Greedy consecutive chunks: each class costs its tokens + 1 separator; 2 tokens for [CLS]/[SEP];
    a chunk also closes at ``max_classes`` classes when that is set."""
    if max_classes is not None and max_classes < 1:
        raise ValueError(f"max_classes_per_chunk must be at least 1, got {max_classes}")
    chunks: list[range] = []
    start, used = 0, 2
    for i, n in enumerate(token_counts):
        cost = n + 1
        if cost + 2 > budget:
            raise ValueError(
                f"prompt {i} ({prompts[i]!r}) needs {cost + 2} tokens with separators, more than the text "
                f"budget of {budget}; shorten it (Grounding DINO cannot score a class it cannot read whole)"
            )
        if used + cost > budget or (max_classes is not None and i - start == max_classes):
            chunks.append(range(start, i))
            start, used = i, 2
        used += cost
    chunks.append(range(start, len(token_counts)))
    return chunks


class GroundingDinoDetector(HFDetector):
    options_cls = GroundingDinoOptions

    def __init__(self, model: Any, processor: Any, source: str, options: GroundingDinoOptions | None = None) -> None:
        super().__init__(model, processor, source, options)
        self.max_text_len = int(self.model.config.max_text_len)
        budget = self.options.token_budget or self.max_text_len
        if not 3 < budget <= self.max_text_len:
            raise ValueError(f"token_budget must be in (3, {self.max_text_len}], got {budget}")
        self.budget = budget

    def settings(self) -> dict:
        return {**super().settings(), "token_budget": self.budget}

    def _tokenize(self, classes: list[str]) -> tuple[dict[str, torch.Tensor], list[tuple[int, int]]]:
        caption, char_spans = caption_of(classes)
        enc = self.processor.tokenizer(caption, return_tensors="pt")
        spans = []
        for (a, b), name in zip(char_spans, classes, strict=True):
            first, last = enc.char_to_token(0, a), enc.char_to_token(0, b - 1)
            if first is None or last is None:
                raise ValueError(f"prompt {name!r} produced no tokens")
            spans.append((first, last + 1))
        return dict(enc), spans

    def plan(self, prompts: list[str]) -> list[TextChunk]:
        """Tokenise the vocabulary into passes that each fit the token budget."""
        names = [p.strip().lower() for p in prompts]
        counts = [len(ids) for ids in self.processor.tokenizer(names, add_special_tokens=False)["input_ids"]]
        chunks = []
        for rng in plan_chunks(counts, self.budget, prompts, self.options.max_classes_per_chunk):
            text, spans = self._tokenize(names[rng.start : rng.stop])
            if text["input_ids"].shape[1] > self.budget:  # tokenizer not additive over ". "-joined names
                raise ValueError(
                    f"caption of prompts {rng.start}..{rng.stop - 1} tokenises to {text['input_ids'].shape[1]} tokens, "
                    f"over the budget of {self.budget}, although the per-class counts fit"
                )
            chunks.append(TextChunk(rng.start, spans, {k: v.to(self.options.device) for k, v in text.items()}))
        return chunks

    _encode_prompts = plan

    def prompt_plan(self, prompts: list[str]) -> list[dict]:
        """The passes a vocabulary takes (written as ``prompt_plan.json`` beside ``prompts.json``): each pass's
        first and last class index, its class count and its caption's token count."""
        return [
            {
                "first": c.class_offset,
                "last": c.class_offset + len(c.spans) - 1,
                "classes": len(c.spans),
                "tokens": int(c.text["input_ids"].shape[1]),
            }
            for c in self.plan(list(prompts))
        ]

    def _class_scores(self, token_probs: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
        """(Q, T) token probabilities → (Q, C) class scores."""
        reduce = torch.amax if self.options.token_reduce == "max" else torch.mean
        return torch.stack([reduce(token_probs[:, a:b], dim=-1) for a, b in spans], dim=-1)

    def _score_batch(self, batch: ImageBatch, chunks: list[TextChunk]) -> list[list[ScoreBlock]]:
        n = len(batch.indices)
        blocks: list[list[ScoreBlock]] = [[] for _ in range(n)]
        for chunk in chunks:
            text = {k: v.expand(n, -1) for k, v in chunk.text.items()}
            out = self.model(**batch.inputs, **text)
            probs = out.logits.sigmoid()  # (B, Q, max_text_len); positions past the caption are -inf → 0
            for i, (height, width) in enumerate(batch.sizes):
                boxes = scale_cxcywh(out.pred_boxes[i], (width, height))
                blocks[i].append(ScoreBlock(self._class_scores(probs[i], chunk.spans), boxes, chunk.class_offset))
        return blocks
