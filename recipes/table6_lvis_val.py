"""Appendix Table 6: LVIS val (Fixed AP, APr/APc/APf), zero-shot and after LVIS fine-tuning (Table 2).

Full: the Table 1 models (T and L), scored zero-shot on lvis-val, then fine-tuned with the Table 2
recipe on lvis_v1_train and scored again. Mini: the mini model on the mini world's LVIS-like val.
"""

from __future__ import annotations

from recipes import table2_lvis_finetune as table2
from recipes.claims import MINI_WITH_PAIRS
from recipes.experiment import Experiment, Finetune, Pretrain, ZeroShot
from recipes.mini_design import MINI_DESIGN_NOTES
from recipes.table1_pretrain import FULL_L, FULL_T

FULL = Experiment(
    name="table6-full",
    title="LVIS val, zero-shot and fine-tuned",
    paper_table="appendix-6",
    model="DetCLIPv2-T",
    backbone="Swin-T",
    pretrain=(
        Pretrain("t", FULL_T, "O365+GoldG+CC15M"),
        Pretrain("l", FULL_L, "O365+GoldG+CC15M", model="DetCLIPv2-L", backbone="Swin-L"),
    ),
    zero_shot=(ZeroShot("t", "lvis-val"), ZeroShot("l", "lvis-val")),
    finetune=(Finetune("t", "lvis-val", table2.FULL), Finetune("l", "lvis-val", table2.FULL)),
)

MINI = Experiment(
    name="table6-mini",
    title="LVIS-like val, zero-shot and fine-tuned",
    paper_table="appendix-6",
    model="DetCLIPv2-mini",
    backbone="mini",
    pretrain=(Pretrain("t", MINI_WITH_PAIRS, "O365+GoldG+CC15M"),),  # the claims' arm with pairs, mini design
    notes=MINI_DESIGN_NOTES,
    zero_shot=(ZeroShot("t", "mini-lvis-val"),),
    finetune=(Finetune("t", "mini-lvis-val", table2.MINI),),
)
