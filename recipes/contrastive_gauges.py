"""Gauges of the image-text alignment that do not depend on the loss's temperature, on held-out pairs.

With τ = 0.5 the contrastive logits live in [−2, 2], so a loss near ln 16 says little. What shows that the
word-region alignment learned something is retrieval on pairs no run trained on (the mini world's
``cc/heldout``): for batches of 16 pairs, each caption's score s_T against the 16 images (the loss's own
word-region score: per concept the best of the top-100 proposals, averaged over the caption's concepts),
and

* ``text_to_image_top1``: how often a caption scores its own image highest (chance 1/16);
* ``cosine_gap``: mean s_T with its own image minus mean s_T with the other 15 (a cosine difference).

Also the per-run training facts the report states: the measured λ rule ratio (folded updates) and the
slope of the detection loss over the last epoch.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recipes.claims import MINI_PAIRS
from reference_model.detclipv2.alignment import word_region_scores
from reference_model.train.loader import DetCLIPv2Collator

__all__ = ["HELDOUT_PAIRS", "alignment_gauges", "heldout_batches", "training_facts", "word_region_matrix"]

HELDOUT_PAIRS = "cc/heldout"  # under the mini-world root
BATCH = 16


def heldout_batches(world: str | Path, concept_dictionary: str | Path | None = None) -> list:
    """The held-out pairs in batches of 16, collated as the recipe collates training pairs (128², its dictionary)."""
    from detclip_bench.datasets import open_dataset

    world = Path(world)
    source = MINI_PAIRS[0]
    dataset = open_dataset(str(world / HELDOUT_PAIRS), format=source.format)
    samples = list(iter(dataset))
    dictionary = concept_dictionary or world / "concept_dictionary.json"
    collate = DetCLIPv2Collator(str(dictionary))
    n = len(samples) // BATCH
    return [collate(samples[i * BATCH : (i + 1) * BATCH], source, dataset, np.random.default_rng(i)) for i in range(n)]


@torch.no_grad()
def word_region_matrix(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """s_T (captions × images) as the contrastive loss computes it, on one process, and the (images × top-k)
    mask of the proposals kept."""
    outputs, anchors = model.dense(batch.images)
    texts = model.text_encoder(batch.concepts)
    regions, valid = model.image_text_regions(batch, outputs, anchors, texts)
    return word_region_scores(texts, batch.caption_concepts, regions, valid), valid


def alignment_gauges(model, batches: list) -> dict[str, float]:
    """Text→image top-1 and the own-image cosine gap of ``model`` (eval mode) over ``batches``."""
    was_training = model.training
    model.eval()
    top1, gap = [], []
    for batch in batches:
        s, _ = word_region_matrix(model, batch)
        eye = torch.eye(len(s), dtype=torch.bool)
        top1.append((s.argmax(1) == torch.arange(len(s))).float().mean().item())
        gap.append(s[eye].mean().item() - s[~eye].mean().item())
    model.train(was_training)
    return {
        "heldout_pairs": BATCH * len(batches),
        "text_to_image_top1": statistics.mean(top1),
        "chance_top1": 1 / BATCH,
        "cosine_gap": statistics.mean(gap),
    }


def _slope(values: list[float]) -> float:
    """Least-squares slope per step (0 for fewer than 2 points)."""
    if len(values) < 2:
        return 0.0
    x = np.arange(len(values), dtype=np.float64)
    return float(np.polyfit(x, np.asarray(values, dtype=np.float64), 1)[0])


def training_facts(metrics_path: str | Path, first_updates: int = 20) -> dict[str, Any]:
    """From a run's ``metrics.jsonl``: the detection loss's slope over the last epoch (per step and over the
    epoch, relative to its mean), and for folded image-text updates the measured gradient ratio (first
    ``first_updates`` and all)."""
    records = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    last_epoch = max(r["epoch"] for r in records)
    det = [r["loss"] for r in records if r["kind"] == "detection" and r["epoch"] == last_epoch]
    slope = _slope(det)
    facts: dict[str, Any] = {
        "last_epoch": last_epoch,
        "detection_steps_last_epoch": len(det),
        "detection_loss_last_epoch_mean": statistics.mean(det) if det else None,
        "detection_loss_slope_per_step": slope,
        # the change a straight line fit predicts over the epoch, as a share of the epoch's mean loss
        "detection_loss_change_over_last_epoch": slope * len(det) / statistics.mean(det) if det else None,
    }
    ratios = [r["grad_ratio"] for r in records if "grad_ratio" in r]
    if ratios:
        facts["grad_ratio_first_updates"] = statistics.mean(ratios[:first_updates])
        facts["grad_ratio_all"] = statistics.mean(ratios)
        facts["grad_cosine_all"] = statistics.mean(r["grad_cosine"] for r in records if "grad_cosine" in r)
    return facts
