"""Appendix Table 4: image-text input resolution (224/256/320/384), Swin-T on O365+CC3M.

Zero-shot LVIS minival AP, peak memory and training time per resolution. The mini scale keeps the
ratios at half size (112/128/160/192 px) on the mini world's O365-like + CC3M-like parts, trained with the
mini design (``recipes/mini_design.py``: folded image-text updates, one CC3M-like batch per detection
update, λ by the rule, two epochs, EMA); there the cost columns are CPU peak RSS and wall seconds on the
machine that ran it.
"""

from __future__ import annotations

from detclip_bench.schema import DataKind
from recipes.experiment import Experiment, Pretrain, ZeroShot, with_sources
from recipes.mini_design import MINI_DESIGN_NOTES, mini_design, one_per_update
from recipes.table1_pretrain import FULL_T, MINI_T
from reference_model.train.config import DataSourceConfig

PAPER_SIZES = (224, 256, 320, 384)
MINI_SIZES = (112, 128, 160, 192)

CC3M_FULL = DataSourceConfig(
    name="cc3m",
    path="cc3m",
    format="img2dataset-wds",
    kind=DataKind.IMAGE_TEXT,
    batch_size=6144,
    size=(320, 320),
    flip=False,
)
CC3M_MINI = DataSourceConfig(
    name="cc3m",
    path="cc/wds",
    format="img2dataset-wds",
    kind=DataKind.IMAGE_TEXT,
    batch_size=16,
    size=(160, 160),
    flip=False,
)
CC12M_MINI = DataSourceConfig(
    name="cc12m",
    path="cc/parquet",
    format="img2dataset-parquet",
    kind=DataKind.IMAGE_TEXT,
    batch_size=16,
    size=(160, 160),
    flip=False,
)


def _experiment(scale: str) -> Experiment:
    base, cc3m, sizes, suite = (
        (FULL_T, CC3M_FULL, PAPER_SIZES, "lvis-minival")
        if scale == "full"
        else (mini_design(MINI_T), one_per_update(CC3M_MINI), MINI_SIZES, "mini-lvis")
    )
    runs = tuple(
        Pretrain(
            key=f"o365-cc3m-{size}",
            pretrain_data="O365+CC3M",
            row=f"{paper} × {paper}",
            config=with_sources(base, f"{base.name}-o365-cc3m-{size}", ("o365",), (cc3m,), image_text_size=size),
        )
        for size, paper in zip(sizes, PAPER_SIZES, strict=True)
    )
    return Experiment(
        name=f"table4-{scale}",
        title="Input resolution of image-text pairs (O365+CC3M)",
        paper_table="appendix-4",
        model="DetCLIPv2-T" if scale == "full" else "DetCLIPv2-mini",
        backbone="Swin-T" if scale == "full" else "mini",
        pretrain=runs,
        zero_shot=tuple(ZeroShot(r.key, suite) for r in runs),
        measure_cost=True,
        notes=()
        if scale == "full"
        else ("mini: image-text sizes 112/128/160/192 stand for 224/256/320/384", *MINI_DESIGN_NOTES),
    )


FULL = _experiment("full")
MINI = _experiment("mini")
