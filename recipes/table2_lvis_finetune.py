"""Appendix Table 2: LVIS fine-tuning (24 epochs = 2x, cosine, lr 4e-5 / text 4e-6, batch 64, M = 150).

Starts from a Table 1 checkpoint (``--model``); everything not listed follows pre-training
(appendix B: "we follow most settings of pre-training"), so the loss weights are Table 1's.
No concept dictionary: LVIS categories carry their own ``def`` fields, the same texts the LVIS
suites prompt with. M = 150 [A]: an image's positives, its verified-absent categories, then other LVIS
categories up to 150; only positives and verified-absent categories push anchors down (federated mask [I]).
"""

from __future__ import annotations

from dataclasses import replace

from detclip_bench.schema import DataKind
from recipes.table1_pretrain import FULL_T, MULTISCALE_SHORT
from reference_model.train.config import DataSourceConfig, ModelConfig, OptimConfig, ScheduleConfig, TrainConfig

FULL = TrainConfig(
    name="table2-lvis-finetune",
    model=FULL_T.model,
    data=(
        DataSourceConfig(
            name="lvis",
            path="lvis/lvis_v1_train.json",
            format="lvis",
            kind=DataKind.DETECTION,
            batch_size=64,
            size=(1333, 800),
            multiscale_short=MULTISCALE_SHORT,
            flip=True,
            concepts_per_image=150,
        ),
    ),
    optim=OptimConfig(lr=4e-5, text_lr_mult=0.1, betas=(0.9, 0.999), weight_decay=0.05),
    schedule=ScheduleConfig(kind="cosine", epochs=24, warmup_iters=1000),
    suite="lvis-val",
    gpus=16,
    amp=True,
    grad_checkpointing=True,
)

MINI = replace(
    FULL,
    name="table2-lvis-finetune-mini",
    model=ModelConfig.of("detclipv2-mini"),  # the variant's own defaults
    data=(
        replace(
            FULL.data[0],
            batch_size=8,
            size=(192, 160),
            multiscale_short=(128, 144, 160),
            options=(("image_root", "coco"),),
            # the mini fine-tune keeps its recorded numbers: only the verified-absent categories (the fill
            # adds prompts that the federated mask leaves without loss for the image; docs/distributed_and_losses.md)
            federated_fill=False,
        ),
    ),
    optim=replace(FULL.optim, lr=2e-4),
    schedule=replace(FULL.schedule, epochs=3, warmup_iters=10),
    suite="mini-lvis-val",
    gpus=1,
    amp=False,
    grad_checkpointing=False,
)
