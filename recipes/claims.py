"""The data-scaling claim (main paper Table 4): image-text pairs add concepts that boxes never name.

Full: Swin-T on O365, O365+CC3M and O365+GoldG+CC3M, zero-shot LVIS minival. Mini (the README's
main job): the mini model on O365+GoldG with and without the CC3M-like pairs, zero-shot Fixed AP on
the LVIS-like minival (its rare bucket is exactly the caption-only concepts), then ODinW13-like
fine-tuning of the image-text model with the Table 3 early stop.
"""

from __future__ import annotations

from dataclasses import replace

from recipes import table3_odinw_finetune as table3
from recipes.experiment import Experiment, Finetune, Pretrain, ZeroShot, with_sources
from recipes.table1_pretrain import FULL_T, MINI_T
from recipes.table4_resolution import CC3M_FULL, CC3M_MINI

BOXED = ("o365", "goldg", "goldg-flickr")

FULL = Experiment(
    name="claims-full", title="Data scaling: what image-text pairs add", paper_table="main-4",
    model="DetCLIPv2-T", backbone="Swin-T",
    pretrain=(
        Pretrain("o365", with_sources(FULL_T, "claims-o365", ("o365",)), "O365"),
        Pretrain("o365-cc3m", with_sources(FULL_T, "claims-o365-cc3m", ("o365",), (CC3M_FULL,)), "O365+CC3M"),
        Pretrain("o365-goldg-cc3m", with_sources(FULL_T, "claims-o365-goldg-cc3m", BOXED, (CC3M_FULL,)),
                 "O365+GoldG+CC3M"),
    ),
    zero_shot=(ZeroShot("o365", "lvis-minival"), ZeroShot("o365-cc3m", "lvis-minival"),
               ZeroShot("o365-goldg-cc3m", "lvis-minival")),
)


def _one_epoch(cfg):
    """The README's main job has a 10-minute budget on 2 cores: one epoch of each pre-training."""
    return replace(cfg, schedule=replace(cfg.schedule, epochs=1))


# fine-tuning inside the same budget: at most 4 epochs, the auto-step rule with t1 = t2 = 1
ODINW_QUICK = replace(table3.MINI, name="table3-odinw13-finetune-quick",
                      schedule=replace(table3.MINI.schedule, epochs=4),
                      early_stop=replace(table3.MINI.early_stop, t1=1, t2=1, min_lr=2e-6))

MINI = Experiment(
    name="claims-mini", title="Data scaling on the mini world: what image-text pairs add", paper_table="main-4",
    model="DetCLIPv2-mini", backbone="mini",
    pretrain=(
        Pretrain("o365-goldg", _one_epoch(with_sources(MINI_T, "claims-mini-o365-goldg", BOXED)), "O365+GoldG"),
        Pretrain("o365-goldg-cc3m", _one_epoch(with_sources(MINI_T, "claims-mini-o365-goldg-cc3m", BOXED,
                                                            (CC3M_MINI,))), "O365+GoldG+CC3M"),
    ),
    zero_shot=(ZeroShot("o365-goldg", "mini-lvis"), ZeroShot("o365-goldg-cc3m", "mini-lvis")),
    finetune=(Finetune("o365-goldg-cc3m", "mini-odinw13-finetune", ODINW_QUICK),),
    random_init_baseline="mini-lvis",
    notes=("mini: the LVIS-like rare bucket (APr) is exactly the caption-only concepts, never boxed in training",),
)
