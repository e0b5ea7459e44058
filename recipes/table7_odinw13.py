"""Appendix Table 7: ODinW13 fine-tuning per dataset (Table 3 recipe, early stop), test AP and Avg."""

from __future__ import annotations

from recipes import table3_odinw_finetune as table3
from recipes.claims import MINI_WITH_PAIRS
from recipes.experiment import Experiment, Finetune, Pretrain
from recipes.mini_design import MINI_DESIGN_NOTES
from recipes.table1_pretrain import FULL_L, FULL_T

FULL = Experiment(
    name="table7-full",
    title="ODinW13 fine-tuning",
    paper_table="appendix-7",
    model="DetCLIPv2-T",
    backbone="Swin-T",
    pretrain=(
        Pretrain("t", FULL_T, "O365+GoldG+CC15M"),
        Pretrain("l", FULL_L, "O365+GoldG+CC15M", model="DetCLIPv2-L", backbone="Swin-L"),
    ),
    finetune=(Finetune("t", "odinw13-finetune", table3.FULL), Finetune("l", "odinw13-finetune", table3.FULL)),
)

MINI = Experiment(
    name="table7-mini",
    title="ODinW13-like fine-tuning",
    paper_table="appendix-7",
    model="DetCLIPv2-mini",
    backbone="mini",
    pretrain=(Pretrain("t", MINI_WITH_PAIRS, "O365+GoldG+CC15M"),),  # the claims' arm with pairs, mini design
    notes=MINI_DESIGN_NOTES,
    finetune=(Finetune("t", "mini-odinw13-finetune", table3.MINI),),
)
