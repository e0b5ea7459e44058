"""Appendix Table 5: adding classification data (IN1k, replicated ×3, each class name as the caption).

Rows #1–#5 are Swin-T (O365; O365+IN1k; O365+CC3M; O365+GoldG+CC15M; O365+GoldG+CC15M+IN1k), rows
#6–#7 Swin-L. IN1k uses the image-text pair setting (batch, 320²) with CE loss weight λ = 0.1 [A].
The mini scale runs rows #1–#5 on the mini world (its IN1k-like classes are the caption-only concepts).
"""

from __future__ import annotations

from detclip_bench.schema import DataKind
from recipes.experiment import Experiment, Pretrain, ZeroShot, with_sources
from recipes.table1_pretrain import FULL_L, FULL_T, MINI_T
from recipes.table4_resolution import CC3M_FULL, CC3M_MINI
from reference_model.train.config import DataSourceConfig

IN1K_FULL = DataSourceConfig(
    name="in1k",
    path="imagenet",
    format="imagenet-folder",
    kind=DataKind.CLASSIFICATION,
    batch_size=6144,
    size=(320, 320),
    flip=False,
    repeat=3,
    options=(("split", "train"),),
)
IN1K_MINI = DataSourceConfig(
    name="in1k",
    path="imagenet",
    format="imagenet-folder",
    kind=DataKind.CLASSIFICATION,
    batch_size=16,
    size=(160, 160),
    flip=False,
    repeat=3,
    options=(("split", "train"), ("synset_mapping", "imagenet/LOC_synset_mapping.txt")),
)

GOLDG = ("o365", "goldg", "goldg-flickr", "cc15m")


def _rows(cc3m, in1k) -> list[tuple[str, str, tuple, tuple]]:
    return [
        ("#1", "O365", ("o365",), ()),
        ("#2", "O365+IN1k", ("o365",), (in1k,)),
        ("#3", "O365+CC3M", ("o365",), (cc3m,)),
        ("#4", "O365+GoldG+CC15M", GOLDG, ()),
        ("#5", "O365+GoldG+CC15M+IN1k", GOLDG, (in1k,)),
    ]


def _experiment(scale: str) -> Experiment:
    full = scale == "full"
    base, cc3m, in1k, suite = (
        (FULL_T, CC3M_FULL, IN1K_FULL, "lvis-minival") if full else (MINI_T, CC3M_MINI, IN1K_MINI, "mini-lvis")
    )
    runs = [
        Pretrain(
            key=f"t-{row[1:]}",
            pretrain_data=data,
            row=row,
            config=with_sources(base, f"{base.name}-{data.lower().replace('+', '-')}", keep, extra),
        )
        for row, data, keep, extra in _rows(cc3m, in1k)
    ]
    if full:
        runs += [
            Pretrain(
                key=f"l-{row[1:]}",
                pretrain_data=data,
                row=row,
                model="DetCLIPv2-L",
                backbone="Swin-L",
                config=with_sources(FULL_L, f"{FULL_L.name}-{data.lower().replace('+', '-')}", keep, extra),
            )
            for row, data, keep, extra in (
                ("#6", "O365+GoldG+CC15M", GOLDG, ()),
                ("#7", "O365+GoldG+CC15M+IN1k", GOLDG, (in1k,)),
            )
        ]
    return Experiment(
        name=f"table5-{scale}",
        title="Adding classification data (IN1k)",
        paper_table="appendix-5",
        model="DetCLIPv2-T" if full else "DetCLIPv2-mini",
        backbone="Swin-T" if full else "mini",
        pretrain=tuple(runs),
        zero_shot=tuple(ZeroShot(r.key, suite) for r in runs),
        notes=() if full else ("mini: rows #1–#5 only (#6–#7 differ by backbone, which the mini model has one of)",),
    )


FULL = _experiment("full")
MINI = _experiment("mini")
