"""An experiment = the training runs and evaluations behind one table, and how its rows map to the paper.

Tables 1–3 of the appendix are *settings* (a :class:`TrainConfig` each); Tables 4–7 are
*results*, each produced by a few pre-training runs, zero-shot evaluations and fine-tunings.
An :class:`Experiment` lists them as plain data; ``detclip-bench reproduce`` executes it
(:mod:`recipes.reproduce`) and lays the numbers out beside the paper's rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from detclip_bench.schema import DataKind
from reference_model.train.config import DataSourceConfig, TrainConfig

__all__ = ["Experiment", "Finetune", "Pretrain", "ZeroShot", "with_model_overrides", "with_sources"]


@dataclass(frozen=True)
class Pretrain:
    """One pre-training run; ``row`` is the paper row it fills (matched on the paper's own label)."""

    key: str  # run directory name, unique within the experiment
    config: TrainConfig
    pretrain_data: str  # e.g. "O365+GoldG+CC15M", as the paper writes it
    row: str = ""  # paper row label (Table 4: "224 × 224"), "" when the row is found by pretrain_data
    model: str = ""  # overrides the experiment's model label (Table 5 rows #6–#7 are Swin-L)
    backbone: str = ""
    seed: int | None = None  # the training seed when the experiment runs several (``with_seeds``)
    arm: str = ""  # paired ablations: the arm label shared by every seed of a run ("without pairs")


@dataclass(frozen=True)
class ZeroShot:
    run: str  # Pretrain key
    suite: str


@dataclass(frozen=True)
class Finetune:
    run: str  # Pretrain key whose model is fine-tuned
    suite: str  # suite scored after fine-tuning (odinw13-finetune, lvis-val, or their mini- versions)
    config: TrainConfig  # Table 2 / Table 3 recipe


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    paper_table: str  # leaderboards/data table id, e.g. "appendix-5" ("" when there is no paper table)
    model: str  # the model label our rows carry ("DetCLIPv2-T", "DetCLIPv2-mini")
    backbone: str
    pretrain: tuple[Pretrain, ...]
    zero_shot: tuple[ZeroShot, ...] = ()
    finetune: tuple[Finetune, ...] = ()
    measure_cost: bool = False  # Table 4: peak memory and training time of every run
    random_init_baseline: str = ""  # a suite to score the untrained model of the first run on ("" = none)
    seeds: tuple[int, ...] = ()  # training seeds the experiment runs by default (``with_seeds``); () = one run
    contrastive_gauges: bool = False  # mini: score every run's text→image retrieval on the held-out pairs
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        keys = [p.key for p in self.pretrain]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.name}: duplicate run keys {keys}")
        for ref in [z.run for z in self.zero_shot] + [f.run for f in self.finetune]:
            if ref not in keys:
                raise ValueError(f"{self.name}: unknown run {ref!r}; runs: {keys}")

    def run(self, key: str) -> Pretrain:
        return next(p for p in self.pretrain if p.key == key)

    def with_seeds(self, seeds: tuple[int, ...]) -> Experiment:
        """Every pre-training run once per training seed (model initialisation and batch order).

        Run keys gain ``-s<seed>``; zero-shot evaluations follow every seed, fine-tuning only the
        first (its per-dataset early stop is the costly part, and the claim is about pre-training).
        """
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"training seeds must be distinct and non-empty, got {seeds}")

        def key(run: str, seed: int) -> str:
            return f"{run}-s{seed}"

        runs = tuple(
            dataclasses.replace(
                p, key=key(p.key, s), seed=s, config=dataclasses.replace(p.config, seed=s, name=f"{p.config.name}-s{s}")
            )
            for s in seeds
            for p in self.pretrain
        )
        return dataclasses.replace(
            self,
            pretrain=runs,
            zero_shot=tuple(dataclasses.replace(z, run=key(z.run, s)) for s in seeds for z in self.zero_shot),
            finetune=tuple(dataclasses.replace(f, run=key(f.run, seeds[0])) for f in self.finetune),
            seeds=(),  # applied
        )


def with_sources(
    cfg: TrainConfig,
    name: str,
    keep: tuple[str, ...],
    extra: tuple[DataSourceConfig, ...] = (),
    image_text_size: int | None = None,
) -> TrainConfig:
    """``cfg`` trained on the sources named in ``keep`` plus ``extra`` (image-text resized to ``image_text_size``)."""
    data = tuple(d for d in cfg.data if d.name in keep) + extra
    missing = set(keep) - {d.name for d in data}
    if missing:
        raise ValueError(f"{cfg.name} has no data source(s) {sorted(missing)}")
    if image_text_size:
        data = tuple(
            dataclasses.replace(d, size=(image_text_size, image_text_size))
            if d.kind in (DataKind.IMAGE_TEXT, DataKind.CLASSIFICATION)
            else d
            for d in data
        )
    return dataclasses.replace(cfg, name=name, data=data)


def with_model_overrides(model, **fields):
    """``model`` (a ModelConfig) with these DetCLIPv2Config fields set, the others left to the variant."""
    merged = {**dict(model.overrides), **fields}
    return dataclasses.replace(model, overrides=tuple(sorted(merged.items())))
