"""Typed, frozen training configs: one dataclass per concern, composed into :class:`TrainConfig`.

Recipes (``recipes/table*.py``) build these with plain function calls and ``dataclasses.replace``;
there is no inheritance or interpolation. ``apply_overrides`` implements ``--set key=value``:
the dotted key is resolved field by field, the value is parsed against the field's annotation,
and an unknown key or a badly typed value is an error naming the valid choices.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from detclip_bench.datasets.layouts import resolve_dataset_roots
from detclip_bench.datasets.object_store import is_url
from detclip_bench.datasets.validate import PATH_OPTIONS
from detclip_bench.errors import UnknownNameError
from detclip_bench.schema import DataKind

__all__ = [
    "DataSourceConfig",
    "EarlyStopConfig",
    "ModelConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "UnknownDataSource",
    "apply_overrides",
    "config_to_dict",
    "locate_data",
    "with_data_root",
]


class UnknownDataSource(ValueError):
    """A ``--set data.<name>.…`` key naming a source this config does not have."""


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


@dataclass(frozen=True)
class ModelConfig:
    """Which model to build: a registered variant (or ``init_from``, a checkpoint to fine-tune) plus
    the ``DetCLIPv2Config`` fields a recipe sets explicitly.

    Every field not named in ``overrides`` keeps the variant's own default, so a recipe cannot
    silently overwrite it (detclipv2-mini keeps its drop_path 0.0). ``--set model.<field>=value``
    accepts any DetCLIPv2Config field and records it here, parsed against that field's type.
    ``grad_checkpointing`` is a run setting: the top-level ``TrainConfig.grad_checkpointing``.
    Build one with :meth:`of`: ``ModelConfig.of("detclipv2-swin-t", drop_path=0.2)``.
    """

    variant: str = "detclipv2-swin-t"
    init_from: str = ""  # a save_pretrained dir / checkpoint to start from (fine-tuning)
    overrides: tuple[tuple[str, Any], ...] = ()  # (DetCLIPv2Config field, value), in the order set

    def __post_init__(self) -> None:
        names = [k for k, _ in self.overrides]
        _require(all(isinstance(k, str) and k for k in names), "model.overrides: keys must be field names")
        _require(len(set(names)) == len(names), f"model.overrides: a field is named twice in {names}")
        _require(
            "grad_checkpointing" not in names,
            "model.grad_checkpointing is a run setting: use the top-level grad_checkpointing",
        )

    @classmethod
    def of(cls, variant: str, *, init_from: str = "", **fields: Any) -> ModelConfig:
        return cls(variant=variant, init_from=init_from, overrides=tuple(fields.items()))

    def with_fields(self, **fields: Any) -> ModelConfig:
        """A copy with ``fields`` set (replacing earlier values of the same fields)."""
        kept = tuple((k, v) for k, v in self.overrides if k not in fields)
        return dataclasses.replace(self, overrides=kept + tuple(fields.items()))

    def field_overrides(self) -> dict[str, Any]:
        return dict(self.overrides)


@dataclass(frozen=True)
class DataSourceConfig:
    """One training dataset and how its batches are built.

    ``batch_size`` is the *global* batch of an iteration that draws this source (all ranks,
    all accumulation steps together). ``micro_batch`` is what one rank feeds the model in one
    forward pass (0 = the whole per-rank share at once); the engine derives the number of
    gradient-accumulation steps from it. ``repeat`` replicates the dataset within an epoch
    (IN1k ×3 in the paper's Table 5). ``epoch_size`` is required for streams without ``len``.
    ``noun_chunks`` is a folder of caption noun-chunk sidecars (``detclip-bench data parse-captions --out``) for a
    stream whose shard folder holds none (read-only data); empty = beside the shards only.
    """

    name: str
    path: str
    format: str
    kind: DataKind
    batch_size: int
    size: tuple[int, int]
    multiscale_short: tuple[int, ...] = ()
    flip: bool = True
    concepts_per_image: int = 150
    repeat: int = 1
    micro_batch: int = 0
    epoch_size: int = 0
    steps_per_epoch: int = 0  # iterations of this source per epoch (0 = ceil(len * repeat / batch_size))
    options: tuple[tuple[str, str], ...] = ()  # loader keyword options, e.g. (("image_root", "o365/train"),)
    # LVIS-style (federated) images: fill up to concepts_per_image from the whole vocabulary (True, appendix
    # Table 2's M = 150) or take only their verified-absent categories (False); see InputSpec.federated_fill
    federated_fill: bool = True
    noun_chunks: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DataKind(self.kind))
        _require(self.batch_size > 0, f"data {self.name}: batch_size must be positive")
        _require(self.repeat >= 1, f"data {self.name}: repeat must be >= 1")
        _require(
            min(self.micro_batch, self.epoch_size, self.steps_per_epoch) >= 0,
            f"data {self.name}: negative micro_batch/epoch_size/steps_per_epoch",
        )
        _require(len(self.size) == 2 and min(self.size) > 0, f"data {self.name}: size must be (width, height)")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a separate text-encoder LR.

    ``lr_rule="sqrt"`` derives the peak LR from the square-root rule
    ``lr = base_lr * sqrt(batch / reference_batch)`` with the detection global batch; ``"fixed"``
    uses ``lr`` as written (the appendix prints the rounded result, e.g. 2.8e-4 for batch 128).
    The pretrained text transformer gets ``lr * text_lr_mult`` (new projections and a randomly
    initialised tower train at ``lr``; see optim.py). ``no_decay_norm_bias`` exempts 1-D parameters
    (norm weights, biases, logit scale/bias) from weight decay, the mmdet/timm habit;
    ``no_decay_names`` exempts parameters by their last name component (Swin's position tables, as
    in mmdetection's Swin configs).
    """

    lr: float = 1e-4
    text_lr_mult: float = 0.1
    lr_rule: Literal["fixed", "sqrt"] = "fixed"
    base_lr: float = 1e-4
    reference_batch: int = 16
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.05
    no_decay_norm_bias: bool = True
    no_decay_names: tuple[str, ...] = ("relative_position_bias_table", "absolute_pos_embed")
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
        _require(self.lr > 0 and self.base_lr > 0, "optim.lr and optim.base_lr must be positive")
        _require(self.lr_rule in ("fixed", "sqrt"), f"optim.lr_rule must be 'fixed' or 'sqrt', got {self.lr_rule!r}")
        _require(all(0.0 <= b < 1.0 for b in self.betas), "optim.betas must be in [0, 1)")


@dataclass(frozen=True)
class ScheduleConfig:
    """Linear warm-up, then ``cosine`` decay (Tables 1–2) or ``auto_step`` (Table 3, see early_stop)."""

    kind: Literal["cosine", "auto_step", "constant"] = "cosine"
    epochs: int = 12
    warmup_iters: int = 1000
    warmup_ratio: float = 0.001  # LR factor at iteration 0 (mmdet's linear warm-up default)
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of the peak
    max_steps: int = 0  # hard cap on optimizer steps (0 = none); for smoke runs
    # the warm-up never takes more than this share of the planned iterations (a 500-iteration warm-up
    # against a 19-image ODinW set at batch 32, 1 iteration per epoch, would outlast 250 epochs)
    warmup_max_share: float = 1.0

    def __post_init__(self) -> None:
        _require(self.kind in ("cosine", "auto_step", "constant"), f"schedule.kind unknown: {self.kind!r}")
        _require(0.0 < self.warmup_max_share <= 1.0, "schedule.warmup_max_share must be in (0, 1]")
        _require(self.epochs > 0 and self.warmup_iters >= 0, "schedule.epochs > 0 and warmup_iters >= 0 required")
        _require(0.0 <= self.warmup_ratio <= 1.0, "schedule.warmup_ratio must be in [0, 1]")


@dataclass(frozen=True)
class EarlyStopConfig:
    """The paper's auto-step rule (appendix B): see :mod:`reference_model.train.early_stop`."""

    t1: int = 5
    t2: int = 8
    factor: float = 0.1
    min_lr: float = 1e-8
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        _require(self.t1 >= 1 and self.t2 >= 1, "early_stop.t1 and t2 must be >= 1")
        _require(0.0 < self.factor < 1.0, "early_stop.factor must be in (0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """A whole run. ``gpus`` records the paper's device count; the real world size comes from torchrun."""

    name: str
    model: ModelConfig
    data: tuple[DataSourceConfig, ...]
    optim: OptimConfig
    schedule: ScheduleConfig
    early_stop: EarlyStopConfig | None = None
    sampler: str = "each_once_shuffled"
    suite: str = ""  # fine-tuning: the suite whose members replace data[0].path
    gpus: int = 1
    amp: bool = False
    grad_checkpointing: bool = False
    concept_dictionary: str = ""  # json of name -> definition used for "name, definition" prompts (method.md §1)
    seed: int = 0
    deterministic: bool = False
    num_workers: int = 0
    log_every: int = 1
    ckpt_every: int = 0  # optimizer steps between checkpoints (0 = at every epoch end only)
    keep_ckpts: int = 2
    tensorboard: bool = False
    # how a box-free (image-text, classification) step of a 'paired' plan updates the weights:
    # "separate" = its own optimizer step, the paper's alternating loop; "folded" = its gradient is added
    # to the preceding detection/grounding step's and one optimizer step takes both (docs/paired_ablations.md)
    box_free_update: Literal["separate", "folded"] = "separate"
    ema_decay: float = 0.0  # >0: also keep an exponential moving average of the weights; it is the saved model
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        _require(len(self.data) > 0, f"{self.name}: at least one data source")
        _require(
            self.box_free_update in ("separate", "folded"),
            f"{self.name}: box_free_update must be 'separate' or 'folded', got {self.box_free_update!r}",
        )
        _require(
            self.box_free_update == "separate" or self.sampler == "paired",
            f"{self.name}: box_free_update='folded' needs sampler='paired' (a box-free step folds into the "
            "detection/grounding step before it)",
        )
        _require(0.0 <= self.ema_decay < 1.0, f"{self.name}: ema_decay must be in [0, 1), got {self.ema_decay}")
        names = [d.name for d in self.data]
        _require(len(set(names)) == len(names), f"{self.name}: duplicate data source names {names}")
        _require(
            self.schedule.kind != "auto_step" or self.early_stop is not None,
            f"{self.name}: schedule.kind='auto_step' needs an early_stop config",
        )

    def source(self, name: str) -> DataSourceConfig:
        for d in self.data:
            if d.name == name:
                return d
        raise UnknownNameError("data source", repr(name), [d.name for d in self.data])


# ----------------------------------------------------------------------------- serialisation


def config_to_dict(cfg: Any) -> Any:
    """JSON-ready dict (enums as values), dumped beside every run; model overrides as a field → value dict."""
    if isinstance(cfg, ModelConfig):
        return {
            "variant": cfg.variant,
            "init_from": cfg.init_from,
            "overrides": {k: config_to_dict(v) for k, v in cfg.overrides},
        }
    if dataclasses.is_dataclass(cfg):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, enum.Enum):
        return cfg.value
    if isinstance(cfg, tuple | list):
        return [config_to_dict(v) for v in cfg]
    return cfg


def with_data_root(cfg: TrainConfig, root: str) -> TrainConfig:
    """Anchor relative data paths and path-valued loader options under a data / mini-world root."""
    from pathlib import Path

    def anchor(value: str) -> str:
        return value if not value or is_url(value) or Path(value).is_absolute() else str(Path(root) / value)

    data = tuple(
        dataclasses.replace(
            d,
            path=anchor(d.path),
            noun_chunks=anchor(d.noun_chunks),
            options=tuple((k, anchor(v) if k in PATH_OPTIONS else v) for k, v in d.options),
        )
        for d in cfg.data
    )
    return dataclasses.replace(cfg, data=data, concept_dictionary=anchor(cfg.concept_dictionary))


def locate_data(cfg, data_root: str, data_map=None):
    """Each relative data path where it really is: in a --data-map folder, else as written under the data root
    (unchanged), else where the same dataset is recognised under the data root in GLIP's or mmdetection's layout."""
    roots = resolve_dataset_roots(data_root, data_map)

    def where(value: str) -> str:
        if not value or is_url(value) or Path(value).is_absolute():
            return value
        found = roots.resolve(value)
        return value if found == Path(data_root) / value else str(found)

    data = tuple(
        dataclasses.replace(
            d, path=where(d.path), options=tuple((k, where(v) if k in PATH_OPTIONS else v) for k, v in d.options)
        )
        for d in cfg.data
    )
    return dataclasses.replace(cfg, data=data, concept_dictionary=where(cfg.concept_dictionary))


def apply_overrides(cfg: TrainConfig, assignments: typing.Iterable[str]) -> TrainConfig:
    """Apply ``key=value`` strings; data sources are addressed by name: ``data.o365.batch_size=8``."""
    before = cfg.model
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        cfg = _set_path(cfg, key.strip().split("."), raw.strip(), key.strip())
    if cfg.model.overrides != before.overrides:
        _check_model_fields(cfg.model)
    return cfg


def _set_path(obj: Any, parts: list[str], raw: str, full_key: str) -> Any:
    if isinstance(obj, tuple) and obj and all(isinstance(d, DataSourceConfig) for d in obj):
        names = [d.name for d in obj]
        if parts[0] not in names:
            raise UnknownDataSource(f"--set {full_key}: unknown data source {parts[0]!r}; known: {', '.join(names)}")
        if len(parts) == 1:
            raise ValueError(f"--set {full_key}: name a field of data source {parts[0]!r}")
        return tuple(_set_path(d, parts[1:], raw, full_key) if d.name == parts[0] else d for d in obj)
    if not dataclasses.is_dataclass(obj):
        raise ValueError(f"--set {full_key}: {parts[0]!r} is below a plain value")
    if isinstance(obj, ModelConfig) and parts[0] not in ("variant", "init_from"):
        return _set_model_field(obj, parts, raw, full_key)
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if parts[0] not in fields:
        raise ValueError(f"--set {full_key}: unknown key {parts[0]!r}; valid: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(type(obj))
    current = getattr(obj, parts[0])
    if len(parts) > 1:
        if current is None and _optional_dataclass(hints[parts[0]]):
            current = _optional_dataclass(hints[parts[0]])()
        new = _set_path(current, parts[1:], raw, full_key)
    else:
        new = _parse_value(raw, hints[parts[0]], full_key)
    try:
        return dataclasses.replace(obj, **{parts[0]: new})
    except ValueError as exc:
        raise ValueError(f"--set {full_key}={raw}: {exc}") from exc


def _set_model_field(obj: ModelConfig, parts: list[str], raw: str, full_key: str) -> ModelConfig:
    """``model.<DetCLIPv2Config field>=value``: parsed against that field's annotation, kept in overrides."""
    from reference_model.detclipv2.config import DetCLIPv2Config  # lazy: pulls in torch/timm

    hints = typing.get_type_hints(DetCLIPv2Config)
    settable = sorted(set(hints) - {"grad_checkpointing"})
    name = parts[0]
    if name == "grad_checkpointing":
        raise ValueError(f"--set {full_key}: grad_checkpointing is a run setting; use --set grad_checkpointing=...")
    if name not in settable:
        raise ValueError(f"--set {full_key}: unknown key {name!r}; valid: variant, init_from, {', '.join(settable)}")
    if len(parts) > 1:
        raise ValueError(f"--set {full_key}: model.{name} is a plain value")
    return obj.with_fields(**{name: _parse_value(raw, hints[name], full_key)})


def _check_model_fields(model: ModelConfig) -> None:
    """The variant's config with every override applied must be valid (ranges, init/backbone match)."""
    from reference_model.detclipv2.variants import VARIANTS, get_config  # lazy: pulls in torch/timm

    if model.variant not in VARIANTS.names():
        return  # init_from checkpoints and test variants are checked when built
    try:
        get_config(model.variant, **model.field_overrides())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"--set model.*: {exc}") from exc


def _optional_dataclass(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 and dataclasses.is_dataclass(args[0]) else None


def _parse_value(raw: str, tp: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _parse_value(raw, arg, key)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is Literal:
        if raw not in args:
            raise ValueError(f"--set {key}: {raw!r} is not one of {', '.join(map(str, args))}")
        return raw
    if origin is tuple:
        text = raw if raw.startswith(("(", "[")) else f"({raw},)"
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"--set {key}: cannot parse {raw!r} as a tuple") from exc
        items = tuple(items) if isinstance(items, list | tuple) else (items,)
        elem_types = [args[0]] * len(items) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(elem_types) != len(items):
            raise ValueError(f"--set {key}: expected {len(elem_types)} values, got {len(items)}")
        return tuple(_parse_value(str(v), t, key) for v, t in zip(items, elem_types, strict=True))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(raw)
        except ValueError:
            raise ValueError(f"--set {key}: {raw!r} is not one of {', '.join(m.value for m in tp)}") from None
    if tp is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {key}: {raw!r} is not a boolean (true/false)")
    if tp in (int, float, str):
        try:
            return tp(raw) if tp is not int else int(raw, 10)
        except ValueError:
            raise ValueError(f"--set {key}: {raw!r} is not a valid {tp.__name__}") from None
    if origin is dict or tp is dict:  # e.g. model.backbone_kwargs={'embed_dim': 32, 'depths': (1, 1, 1, 1)}
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"--set {key}: cannot parse {raw!r} as a dict literal") from exc
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"--set {key}: expected a dict with string keys, got {raw!r}")
        return value
    raise ValueError(f"--set {key}: fields of type {tp} cannot be set from the command line")
