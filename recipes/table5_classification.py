"""Appendix Table 5: adding classification data (IN1k, replicated ×3, each class name as the caption).

Rows #1–#5 are Swin-T (O365; O365+IN1k; O365+CC3M; O365+GoldG+CC15M; O365+GoldG+CC15M+IN1k), rows
#6–#7 Swin-L. IN1k uses the image-text pair setting (batch, 320²) with CE loss weight λ = 0.1 [A].
The mini scale runs rows #1–#5 on the mini world (its IN1k-like classes are the caption-only concepts) with
the mini design (``recipes/mini_design.py``); its CC15M is the claims' CC3M+CC12M-like pairs.
"""

from __future__ import annotations

from dataclasses import replace

from detclip_bench.schema import DataKind
from recipes.claims import BOXED, MINI_PAIRS
from recipes.experiment import Experiment, Pretrain, ZeroShot, with_model_overrides, with_sources
from recipes.mini_design import MINI_DESIGN_NOTES, MINI_LAMBDA, mini_design, one_per_update
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


def _mini_rows() -> list[tuple[str, str, tuple, tuple]]:
    """The mini design's rows: CC15M is the claims' CC3M+CC12M-like pairs, one box-free batch per update."""
    in1k = one_per_update(IN1K_MINI)
    cc3m = one_per_update(replace(CC3M_MINI, size=MINI_PAIRS[0].size))  # the pairs at their native 128², as in #4
    return [
        ("#1", "O365", ("o365",), ()),
        ("#2", "O365+IN1k", ("o365",), (in1k,)),
        ("#3", "O365+CC3M", ("o365",), (cc3m,)),
        ("#4", "O365+GoldG+CC15M", BOXED, MINI_PAIRS),
        ("#5", "O365+GoldG+CC15M+IN1k", BOXED, (*MINI_PAIRS, in1k)),
    ]


def _config(base, name: str, keep: tuple, extra: tuple, ce_weight: float | None):
    """``base`` on these sources; a run with classification data gets ``ce_weight`` when one is given."""
    cfg = with_sources(base, name, keep, extra)
    if ce_weight is not None and any(d.kind is DataKind.CLASSIFICATION for d in extra):
        cfg = replace(cfg, model=with_model_overrides(cfg.model, loss_classification=ce_weight))
    return cfg


def _experiment(scale: str) -> Experiment:
    full = scale == "full"
    # the paper weighs IN1k's CE like the contrastive loss (both 0.1); the mini keeps them equal
    base, rows, suite, ce_weight = (
        (FULL_T, _rows(CC3M_FULL, IN1K_FULL), "lvis-minival", None)
        if full
        else (mini_design(MINI_T), _mini_rows(), "mini-lvis", MINI_LAMBDA)
    )
    runs = [
        Pretrain(
            key=f"t-{row[1:]}",
            pretrain_data=data,
            row=row,
            config=_config(base, f"{base.name}-{data.lower().replace('+', '-')}", keep, extra, ce_weight),
        )
        for row, data, keep, extra in rows
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
                ("#7", "O365+GoldG+CC15M+IN1k", GOLDG, (IN1K_FULL,)),
            )
        ]
    mini_notes = (
        "mini: rows #1–#5 only (#6–#7 differ by backbone, which the mini model has one of)",
        f"mini: IN1k-like CE weight = the contrastive λ ({MINI_LAMBDA:g}), as the paper weighs both 0.1",
        "mini: in #5 the pairs and the IN1k-like batches share the one box-free slot per update (folded plan), so "
        "#5 sees about half of #4's pair batches",
        *MINI_DESIGN_NOTES,
    )
    return Experiment(
        name=f"table5-{scale}",
        title="Adding classification data (IN1k)",
        paper_table="appendix-5",
        model="DetCLIPv2-T" if full else "DetCLIPv2-mini",
        backbone="Swin-T" if full else "mini",
        pretrain=tuple(runs),
        zero_shot=tuple(ZeroShot(r.key, suite) for r in runs),
        notes=() if full else mini_notes,
    )


FULL = _experiment("full")
MINI = _experiment("mini")
