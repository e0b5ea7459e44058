"""The data-scaling claim (main paper Table 4): image-text pairs add concepts that boxes never name.

Full: Swin-T on O365, O365+CC3M and O365+GoldG+CC3M, zero-shot LVIS minival. Mini (the README's
main job): the mini model on O365+GoldG with and without the CC3M/CC12M-like pairs, zero-shot Fixed AP
on the LVIS-like minival (100 images) and val (200 images), whose rare bucket is exactly the
caption-only concepts.
``reproduce --table 7`` fine-tunes on ODinW13. The mini arms are paired (see ``MINI_DEPARTURES``) and run
for two training seeds; every departure from the paper's values is stated in the output table.
"""

from __future__ import annotations

from dataclasses import replace

from recipes.experiment import Experiment, Pretrain, ZeroShot, with_model_overrides, with_sources
from recipes.table1_pretrain import FULL_T, MINI_T
from recipes.table4_resolution import CC3M_FULL, CC3M_MINI, CC12M_MINI

BOXED = ("o365", "goldg", "goldg-flickr")

FULL = Experiment(
    name="claims-full",
    title="Data scaling: what image-text pairs add",
    paper_table="main-4",
    model="DetCLIPv2-T",
    backbone="Swin-T",
    pretrain=(
        Pretrain("o365", with_sources(FULL_T, "claims-o365", ("o365",)), "O365"),
        Pretrain("o365-cc3m", with_sources(FULL_T, "claims-o365-cc3m", ("o365",), (CC3M_FULL,)), "O365+CC3M"),
        Pretrain(
            "o365-goldg-cc3m", with_sources(FULL_T, "claims-o365-goldg-cc3m", BOXED, (CC3M_FULL,)), "O365+GoldG+CC3M"
        ),
    ),
    zero_shot=(
        ZeroShot("o365", "lvis-minival"),
        ZeroShot("o365-cc3m", "lvis-minival"),
        ZeroShot("o365-goldg-cc3m", "lvis-minival"),
    ),
)


#: The mini λ rule, fixed before any claims run: λ is set so that, over the first 20 folded updates of
#: world seed 0 / training seed 0, the image-text gradient's norm is half the detection/grounding gradient's
#: (all parameters). ``python benchmarks/lambda_rule.py`` measures the ratio at λ = 1 and prints the λ that
#: meets it (benchmarks/results/lambda_rule.json); every run's own measured ratio is in its report.
MINI_GRAD_SHARE = 0.5
MINI_LAMBDA = 2.1  # 0.5 / 0.237, the ratio measured at λ = 1 (benchmarks/results/lambda_rule.json)
MINI_EPOCHS = 2
MINI_EMA_DECAY = 0.99
#: clip the update's gradient norm at 35 (mmdetection's value for single-stage detectors), chosen on the
#: default world before worlds 1 and 2 were re-run: there training seed 1 took gradients of 334 and 526
#: (typical 10–20) at steps 9 and 30, its losses jumped (detection 2.1 → 2.8, grounding 1.7 → 2.0) and
#: that arm ended 19 AP below seed 0's; the paper states no clipping
MINI_GRAD_CLIP = 35.0


def _mini_schedule(cfg):
    """Two epochs of the boxed data per run, cosine to 0, gradients clipped, the EMA of the weights evaluated."""
    return replace(
        cfg,
        schedule=replace(cfg.schedule, epochs=MINI_EPOCHS),
        optim=replace(cfg.optim, grad_clip=MINI_GRAD_CLIP),
        ema_decay=MINI_EMA_DECAY,
    )


#: mini-scale departures from the paper, written into the output table (paper value beside ours)
MINI_DEPARTURES = (
    "paired arms: both arms see the same detection/grounding batches in the same order at the same LRs",
    "folded image-text updates (box_free_update='folded'): each image-text batch's gradient is added to the "
    "detection/grounding step before it and one AdamW step takes both; the paper alternates, one optimizer step "
    "per batch. Folded, the λ = 0 control is the arm without pairs bit for bit (tests/train/test_folded_updates.py), "
    "so 'Δ mechanism' (λ > 0 vs λ = 0) and 'Δ paper' (with vs without pairs) are one contrast here",
    f"λ (loss_contrastive) = {MINI_LAMBDA:g} (paper 0.1), by the declared rule: image-text gradient norm = "
    f"{MINI_GRAD_SHARE:g} × detection gradient norm on the first 20 updates (measured ratio in the report)",
    f"{MINI_EPOCHS} epochs of the boxed data (113 steps each), cosine to 0, EMA of the weights (decay "
    f"{MINI_EMA_DECAY:g}, timm warm-up) evaluated; the paper trains 12 epochs without EMA",
    f"gradient norm clipped at {MINI_GRAD_CLIP:g} in both arms (mmdetection's single-stage value; the paper "
    "states none): without it one training seed of the default world took a 30× gradient spike at peak LR",
    "image-text input 128² (paper 320²): the mini pairs' native size",
    "image-text batch 16 per update (paper 6,144), CC3M-like webdataset and CC12M-like parquet pairs alternating",
    "caption concepts: spaCy noun chunks plus the content-word runs spaCy misses, kept only when the training "
    "concept dictionary knows their head and they are not about the picture ('stock photo', 'sale')",
    "τ = 0.5, proposal top-k = 100, label smoothing 0.1: the paper's values",
)

MINI_PAIRS = tuple(
    replace(source, size=(128, 128), batch_size=16, steps_per_epoch=steps)
    for source, steps in ((CC3M_MINI, 57), (CC12M_MINI, 56))  # 113 = the boxed steps of one epoch
)

_PAIRED = replace(
    MINI_T, model=with_model_overrides(MINI_T.model, loss_contrastive=MINI_LAMBDA), box_free_update="folded"
)

MINI = Experiment(
    name="claims-mini",
    title="Data scaling on the mini world: what image-text pairs add (paired arms)",
    paper_table="main-4",
    model="DetCLIPv2-mini",
    backbone="mini",
    pretrain=(
        Pretrain(
            "o365-goldg",
            _mini_schedule(with_sources(_PAIRED, "claims-mini-o365-goldg", BOXED)),
            "O365+GoldG",
            arm="without pairs",
        ),
        Pretrain(
            "o365-goldg-cc",
            _mini_schedule(with_sources(_PAIRED, "claims-mini-o365-goldg-cc", BOXED, MINI_PAIRS)),
            "O365+GoldG+CC15M",
            arm="with pairs",
        ),  # CC3M- and CC12M-like pairs
    ),
    zero_shot=tuple(
        ZeroShot(run, suite) for run in ("o365-goldg", "o365-goldg-cc") for suite in ("mini-lvis", "mini-lvis-val")
    ),
    random_init_baseline="mini-lvis",
    seeds=(0, 1),
    contrastive_gauges=True,
    notes=(
        "mini: the LVIS-like rare bucket (APr) is exactly the caption-only concepts, never boxed in training",
        *MINI_DEPARTURES,
    ),
)
