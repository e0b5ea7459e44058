"""The training loop: hybrid batches, DDP, AMP, gradient accumulation, atomic resumable checkpoints.

One optimizer step = one planned iteration of the hybrid sampler (one data kind for the whole
global batch). A rank feeds its share in ``micro_batch`` pieces; each piece's loss is divided
by the number of pieces and gradients are all-reduced only on the last (``no_sync`` before), so
the update equals one pass over the whole global batch. Every micro-step reseeds torch from
``(seed, epoch, position, rank, micro)``: drop-path/dropout randomness is then identical in an
uninterrupted and a resumed run, and a checkpoint needs no RNG snapshot.

Per optimizer step rank 0 appends one JSON line to ``<out>/metrics.jsonl`` (step, epoch, position,
source, kind, every loss averaged over ranks and micro-batches, every group's LR, seconds), and
optionally mirrors scalars to TensorBoard.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from timm.utils import ModelEmaV3
from torch import nn
from tqdm.auto import tqdm

from detclip_bench.dist import DistContext, init_distributed
from detclip_bench.io import atomic_write_json, atomic_write_text
from detclip_bench.schema import DataKind
from reference_model.train.checkpoint import find_latest, load_checkpoint, prune_checkpoints, save_checkpoint
from reference_model.train.config import TrainConfig, config_to_dict
from reference_model.train.loader import Collator, DetCLIPv2Collator, HybridLoader, StepBatch, source_length
from reference_model.train.optim import build_optimizer
from reference_model.train.sampler import HybridSampler
from reference_model.train.schedule import build_scheduler, group_lrs

__all__ = [
    "EpochCallback",
    "Trainer",
    "gradient_split",
    "lr_batch_size",
    "warn_missing_definitions",
    "warn_small_contrastive_batches",
    "wrap_ddp",
]

log = logging.getLogger("detclip_bench.train")

BOX_SUPERVISED = (DataKind.DETECTION, DataKind.GROUNDING)

EpochCallback = Callable[["Trainer", int], bool]  # (trainer, finished epoch) -> stop?


def wrap_ddp(model: nn.Module, ctx: DistContext, find_unused_parameters: bool = True) -> nn.Module:
    """DDP when distributed, with ``find_unused_parameters`` on by default because some parameters are unused.

    :meth:`DetCLIPv2.forward` adds the box and centerness outputs to every loss with weight 0, but
    image-text and classification steps never call the region-concept logits (``head.logits``: its
    logit scale and bias), so those parameters get no gradient in such a step. Process-group set-up
    (:func:`detclip_bench.dist.init_distributed`) is shared with evaluation and lives in the core.
    """
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def lr_batch_size(cfg: TrainConfig) -> int:
    """The batch the square-root rule uses: the detection/grounding global batch (appendix B)."""
    boxed = [d.batch_size for d in cfg.data if d.kind in BOX_SUPERVISED]
    return max(boxed) if boxed else cfg.data[0].batch_size


def warn_small_contrastive_batches(cfg: TrainConfig, world_size: int) -> list[str]:
    """Warn (once per source) where gradient accumulation shrinks an image-text contrastive batch.

    The contrastive loss of one micro-batch only sees the images gathered in that forward pass as
    negatives: ``micro_batch`` × world size, not the configured global batch. Returns the warnings.
    """
    messages = []
    for source in cfg.data:
        if source.kind is not DataKind.IMAGE_TEXT or not source.micro_batch:
            continue
        per_rank = source.batch_size // max(1, world_size)
        if source.micro_batch >= per_rank:
            continue
        effective = source.micro_batch * world_size
        messages.append(
            f"data source {source.name!r}: gradient accumulation shrinks the image-text contrastive batch to "
            f"micro_batch {source.micro_batch} x world {world_size} = {effective} images (negatives per caption), "
            f"not the configured global batch {source.batch_size}; the loss is not the global-batch loss. Raise "
            f"micro_batch (memory permitting, e.g. with grad_checkpointing) or use more GPUs."
        )
    for message in messages:
        log.warning(message)
    return messages


def warn_missing_definitions(cfg: TrainConfig) -> list[str]:
    """Warn when a run without a concept dictionary trains detection/grounding prompts as bare names.

    DetCLIPv2 prompts "name, definition" in training and testing, and the LVIS suites evaluate with
    LVIS definitions. LVIS training data ships its own, and ODinW is evaluated with its names verbatim,
    so runs on those alone need no dictionary."""
    if cfg.concept_dictionary:
        return []
    bare = [
        s.name
        for s in cfg.data
        if s.kind is DataKind.GROUNDING or (s.kind is DataKind.DETECTION and s.format not in ("lvis", "odinw"))
    ]
    if not bare:
        return []
    message = (
        f"{cfg.name}: no concept_dictionary configured, so data sources {', '.join(map(repr, bare))} train "
        "with bare-name prompts (and grounding images get no sampled negatives) while evaluation prompts "
        "(LVIS) carry definitions; build one with `detclip-bench data make-dictionary` "
        "(docs/concept_dictionary.md) and set concept_dictionary"
    )
    log.warning(message)
    return [message]


def _step_seed(*parts: int) -> int:
    digest = hashlib.blake2b(json.dumps(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def gradient_split(before: Sequence[torch.Tensor | None], after: Sequence[torch.Tensor | None]) -> dict[str, float]:
    """How a folded update's gradient splits: ``before`` holds the detection/grounding part, ``after`` the sum.

    Returns the norms of both parts over all parameters (``grad_norm_boxed``, ``grad_norm_box_free``), their
    ratio (box-free / boxed, the quantity the mini λ is set by) and their cosine."""
    dot = boxed = free = 0.0
    for b, a in zip(before, after, strict=True):
        if a is None:
            continue
        g_b = b.double() if b is not None else torch.zeros_like(a, dtype=torch.float64)
        g_f = a.double() - g_b
        dot += float((g_b * g_f).sum())
        boxed += float((g_b * g_b).sum())
        free += float((g_f * g_f).sum())
    nb, nf = math.sqrt(boxed), math.sqrt(free)
    split = {"grad_norm_boxed": nb, "grad_norm_box_free": nf}
    if nb > 0:
        split["grad_ratio"] = nf / nb
    if nb > 0 and nf > 0:
        split["grad_cosine"] = dot / (nb * nf)
    return split


class Trainer:
    """Trains a model on a :class:`~reference_model.train.config.TrainConfig`'s data sources, one data
    kind per optimizer step, with DDP, AMP, gradient accumulation and resumable checkpoints.

    The model contract: ``model(batch)`` takes what the collator returns for one micro-batch (moved
    to the device when it has a ``.to``) and returns a dict whose ``"loss"`` is the 0-dim tensor to
    backpropagate; every other one-element tensor in it is averaged over micro-batches and ranks
    and logged. Optional hooks: ``init_summary()`` (logged at start), ``set_grad_checkpointing(bool)`` (required
    when ``cfg.grad_checkpointing``), ``config.noun_phrase_model`` (for the default collator),
    ``loss_weight(kind)`` (a folded box-free step whose weight is 0 skips its forward).

    Box-free steps of a ``paired`` plan either take their own optimizer step (``cfg.box_free_update``
    "separate", the paper's loop) or are *folded*: their gradient is added to the detection/grounding
    step just before and one optimizer step takes both, so an ablation arm differs from its control by
    the box-free gradient alone and never by extra AdamW momentum steps (docs/paired_ablations.md).
    ``self.step`` counts planned iterations either way; a checkpoint is never written while a folded
    update waits for its box-free half. With ``cfg.ema_decay`` an EMA of the weights (timm's
    ``ModelEmaV3`` with warm-up) is kept, checkpointed, and is :attr:`final_model`.

    :meth:`fit` writes into ``out_dir``: ``config.json`` (the config as a dict), ``metrics.jsonl``
    (every ``cfg.log_every`` steps: step, epoch, position, source, kind, averaged losses and facts,
    LR per parameter group, seconds), ``checkpoints/step_<n>/`` (weights as ``model.safetensors`` and
    optimizer/scheduler/scaler/sampler state as ``train_state.pt``; ``latest.json`` names the newest,
    the newest ``cfg.keep_ckpts`` are kept, 0 = all) and, with ``cfg.tensorboard``, ``tensorboard/``. It
    checkpoints every ``cfg.ckpt_every`` steps, at each epoch end and at the end, and returns
    ``{"steps", "epochs", "stopped_early", "last_loss", "checkpoint"}``. Files are written by
    rank 0 only.

    Args:
        cfg: the run's settings; ``cfg.data`` lists the sources, in the order of ``datasets``.
        model: the module to train; moved to ``ctx.device`` and wrapped in DDP when distributed.
        datasets: one opened dataset per ``cfg.data`` entry: map-style, or a stream whose epoch
            length is the source's ``epoch_size`` or the stream's ``declared_size()``.
        out_dir: the run folder (created by :meth:`fit`).
        ctx: the process's rank, world size and device (default: ``init_distributed()`` from the
            environment).
        collate: ``(samples, source, dataset, rng) -> batch`` for one micro-batch (default: a
            :class:`~reference_model.train.loader.DetCLIPv2Collator` with ``cfg.concept_dictionary``).
        on_epoch_end: ``(trainer, finished_epoch) -> stop?``, called after every epoch (early stopping).
        progress: show a progress bar (rank 0).

    Example::

        >>> from recipes import get_recipe
        >>> from reference_model.train.build import build_model, open_sources
        >>> from reference_model.train.config import with_data_root
        >>> cfg = with_data_root(get_recipe("table1-pretrain-t", "mini"), "mini_world")
        >>> trainer = Trainer(cfg, build_model(cfg), open_sources(cfg), "runs/mini")
        >>> summary = trainer.fit(resume=True)  # continues from checkpoints/latest.json when present
    """

    def __init__(
        self,
        cfg: TrainConfig,
        model: nn.Module,
        datasets: Sequence[Any],
        out_dir: str | Path,
        *,
        ctx: DistContext | None = None,
        collate: Collator | None = None,
        on_epoch_end: EpochCallback | None = None,
        progress: bool = True,
    ) -> None:
        if len(datasets) != len(cfg.data):
            raise ValueError(f"{len(cfg.data)} data sources configured but {len(datasets)} datasets given")
        self.cfg = cfg
        self.ctx = ctx or init_distributed()
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.metrics_path = self.out_dir / "metrics.jsonl"
        self.on_epoch_end = on_epoch_end
        self.progress = progress and self.ctx.is_main
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(cfg.seed)

        self.model = model.to(self.ctx.device)
        if self.ctx.is_main and hasattr(model, "init_summary"):  # where the weights started, in every run's log
            log.info(
                "%s: model %s, initial weights %s",
                cfg.name,
                getattr(model, "name", type(model).__name__),
                # fine-tuning starts from a checkpoint; its towers' first starts are history, not this run's start
                f"checkpoint {cfg.model.init_from} (its towers first started from {model.init_summary()})"
                if cfg.model.init_from
                else model.init_summary(),
            )
        if cfg.grad_checkpointing:
            if not hasattr(model, "set_grad_checkpointing"):
                raise ValueError("grad_checkpointing=True but the model has no set_grad_checkpointing()")
            model.set_grad_checkpointing(True)
        self.ddp = wrap_ddp(self.model, self.ctx)

        lengths = [source_length(d, s) for d, s in zip(datasets, cfg.data, strict=True)]
        self.sampler = HybridSampler(
            lengths,
            [s.batch_size for s in cfg.data],
            [s.repeat for s in cfg.data],
            schedule=cfg.sampler,
            seed=cfg.seed,
            names=[s.name for s in cfg.data],
            anchored=[s.kind in BOX_SUPERVISED for s in cfg.data],
            steps=[s.steps_per_epoch for s in cfg.data],
            cap_box_free=cfg.box_free_update == "folded",
        )
        if self.sampler.capped and self.ctx.is_main:
            log.warning(
                "%s: the box-free sources plan more steps per epoch than the %d detection/grounding steps they fold "
                "into; their counts were scaled down to %s",
                cfg.name,
                self.sampler.anchored_steps_per_epoch(),
                {
                    n: k
                    for n, k, a in zip(
                        self.sampler.names, self.sampler.iters_per_source(), self.sampler.anchored, strict=True
                    )
                    if not a
                },
            )
        if collate is None:
            np_model = getattr(getattr(model, "config", None), "noun_phrase_model", None)
            collate = DetCLIPv2Collator(cfg.concept_dictionary, noun_phrase_model=np_model)
        if isinstance(collate, DetCLIPv2Collator):
            collate.dictionary()  # a missing dictionary fails here (naming the command that builds it), not mid-epoch
            if self.ctx.is_main:
                warn_missing_definitions(cfg)
        self.loader = HybridLoader(
            datasets,
            cfg.data,
            self.sampler,
            collate=collate,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
            seed=cfg.seed,
            num_workers=cfg.num_workers,
        )
        if self.ctx.is_main:
            warn_small_contrastive_batches(cfg, self.ctx.world_size)
        self.steps_per_epoch = len(self.sampler)
        self.total_steps = self.steps_per_epoch * cfg.schedule.epochs
        if cfg.schedule.max_steps:
            self.total_steps = min(self.total_steps, cfg.schedule.max_steps)

        self.optimizer = build_optimizer(self.model, cfg.optim, lr_batch_size(cfg))
        min_lr = cfg.early_stop.min_lr if cfg.schedule.kind == "auto_step" and cfg.early_stop else 0.0
        # a 'paired' plan's box-free steps hold the schedule still: it runs over the anchored steps only
        anchored_share = self.sampler.anchored_steps_per_epoch() / self.steps_per_epoch
        self.schedule_steps = max(1, round(self.total_steps * anchored_share))
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.schedule_steps, min_lr=min_lr)
        amp_on_cuda = cfg.amp and self.ctx.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.ctx.device.type, enabled=amp_on_cuda)
        self.autocast_dtype = torch.float16 if self.ctx.device.type == "cuda" else torch.bfloat16
        self.step = 0  # planned iterations done (an optimizer step each, unless box-free updates are folded)
        self.optimizer_steps = 0
        # the exponential moving average of the weights (timm's, with its warm-up); the saved model when on
        self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay, use_warmup=True) if cfg.ema_decay else None
        self.epoch = 0  # current epoch
        self.stopped_early = False
        self.extra_state: dict[str, Any] = {}  # name -> object with state_dict/load_state_dict
        self.extra_state["loader"] = self.loader  # stream reader layout, checked on resume
        if self.ema is not None:
            self.extra_state["ema"] = self.ema
        self._plan_cache: tuple[int, list[bool]] | None = None
        self._cursor = (0, 0)  # (epoch, position) of the next step to run; the loader may prefetch past it
        self._tb = None
        self._logged_sources: set[str] = set()

    # ------------------------------------------------------------------ state

    def train_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizer_steps": self.optimizer_steps,
            "epoch": self.epoch,
            "stopped_early": self.stopped_early,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": {**self.sampler.state_dict(), "epoch": self._cursor[0], "position": self._cursor[1]},
            "extra": {k: v.state_dict() for k, v in self.extra_state.items()},
        }

    def save(self, name: str | None = None, point_latest: bool = True) -> Path | None:
        """Checkpoint on rank 0 (all ranks hold identical weights under DDP)."""
        path = None
        if self.ctx.is_main:
            path = save_checkpoint(
                self.ckpt_dir,
                name or f"step_{self.step:08d}",
                self.model,
                self.train_state(),
                point_latest=point_latest,
            )
            if name is None:
                prune_checkpoints(self.ckpt_dir, self.cfg.keep_ckpts)
        if self.ctx.distributed:
            dist.barrier()
        return path

    def resume(self, ckpt: str | Path | None = None) -> bool:
        """Load ``ckpt`` (default: the run's latest); False when there is nothing to resume."""
        ckpt = Path(ckpt) if ckpt else find_latest(self.ckpt_dir)
        if ckpt is None:
            return False
        state = load_checkpoint(ckpt, self.model, map_location=self.ctx.device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        for key, obj in self.extra_state.items():
            if key in state["extra"]:
                obj.load_state_dict(state["extra"][key])
        self.step, self.epoch, self.stopped_early = state["step"], state["epoch"], state["stopped_early"]
        self.optimizer_steps = state.get("optimizer_steps", self.step)
        self._cursor = (self.sampler.epoch, self.sampler.position)
        if self.ctx.is_main:
            self._truncate_metrics(self.step)
        log.info(
            "resumed from %s at step %d (epoch %d, position %d)",
            ckpt,
            self.step,
            self.sampler.epoch,
            self.sampler.position,
        )
        return True

    def _truncate_metrics(self, step: int) -> None:
        """Drop log lines of steps after the checkpoint: they are recomputed by the resumed run."""
        if not self.metrics_path.exists():
            return
        lines = self.metrics_path.read_text().splitlines()
        keep = []
        for line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by the kill
            if rec.get("step", 0) <= step:
                keep.append(line)
        atomic_write_text(self.metrics_path, "".join(f"{line}\n" for line in keep))

    # ------------------------------------------------------------------ loop

    def _forward_backward(self, batch: StepBatch, *, sync: bool = True) -> dict[str, float]:
        """Accumulate the batch's gradient; ``sync=False`` keeps DDP from all-reducing it yet (a folded update
        all-reduces once, on its last batch)."""
        n = len(batch.micro)
        sums: dict[str, float] = {}
        for i, micro in enumerate(batch.micro):
            torch.manual_seed(
                _step_seed(self.cfg.seed, batch.epoch, *(batch.seed_key or (batch.position,)), self.ctx.rank, i)
            )
            if hasattr(micro, "to"):
                micro = micro.to(self.ctx.device)
            sync_now = (sync and i == n - 1) or not self.ctx.distributed
            ctx = contextlib.nullcontext() if sync_now else self.ddp.no_sync()
            with ctx:
                with torch.autocast(self.ctx.device.type, dtype=self.autocast_dtype, enabled=self.cfg.amp):
                    losses = self.ddp(micro)
                loss = losses["loss"]
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"non-finite loss {loss.item()} at step {self.step + 1} (epoch {batch.epoch}, "
                        f"position {batch.position}, source {batch.source})"
                    )
                self.scaler.scale(loss / n).backward()
            for key, value in losses.items():
                if torch.is_tensor(value) and value.numel() == 1:
                    sums[key] = sums.get(key, 0.0) + float(value.detach()) / n
        return self._mean_over_ranks(sums)

    @property
    def final_model(self) -> nn.Module:
        """The weights a run hands on (saved as its ``model/``): the EMA when ``cfg.ema_decay`` is on."""
        return self.ema.module if self.ema is not None else self.model

    def _next_is_box_free(self, batch: StepBatch) -> bool:
        """Whether the plan's next iteration (same epoch) is a box-free step."""
        if self._plan_cache is None or self._plan_cache[0] != batch.epoch:
            self._plan_cache = (batch.epoch, [p.anchored for p in self.sampler.epoch_plan(batch.epoch)])
        plan = self._plan_cache[1]
        return batch.position + 1 < len(plan) and not plan[batch.position + 1]

    def _skips_forward(self, batch: StepBatch) -> bool:
        """A folded box-free step whose loss weight is 0 adds no gradient: skipping its forward is exact."""
        if self.cfg.box_free_update != "folded" or batch.anchored:
            return False
        weight = getattr(self.model, "loss_weight", None)
        return weight is not None and weight(batch.kind) == 0

    def _gradients(self) -> list[torch.Tensor | None]:
        return [None if p.grad is None else p.grad.detach().clone() for p in self.model.parameters()]

    def _mean_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        if not self.ctx.distributed:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.ctx.device)
        dist.all_reduce(t)
        return {k: float(v) / self.ctx.world_size for k, v in zip(keys, t.tolist(), strict=True)}

    def _optimizer_step(self, anchored: bool = True) -> dict[str, float]:
        """One AdamW step; with ``optim.grad_clip`` the update's gradient norm before clipping is returned
        (``grad_norm``, and ``grad_clipped`` = 1 when the clip scaled it down) for the log."""
        clip: dict[str, float] = {}
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip))
            clip = {"grad_norm": norm, "grad_clipped": float(norm > self.cfg.optim.grad_clip)}
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if anchored:
            self.scheduler.step()
        return clip

    def _log(self, batch: StepBatch, losses: dict[str, float], lrs: dict[str, float], seconds: float) -> None:
        if not self.ctx.is_main:
            return
        record = {
            "step": self.step,
            "epoch": batch.epoch,
            "position": batch.position,
            "source": batch.source,
            "kind": batch.kind.value,
            **losses,
            "lr": lrs,
            "seconds": round(seconds, 4),
        }
        if batch.source not in self._logged_sources:  # each source's first step in the run log, facts included
            self._logged_sources.add(batch.source)
            log.info(
                "first %s step (source %s): %s",
                batch.kind.value,
                batch.source,
                ", ".join(f"{k}={v:.4g}" for k, v in losses.items()),
            )
        if self.step % self.cfg.log_every == 0 or self.step == self.total_steps:
            with open(self.metrics_path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            if self._tb is not None:
                for key, value in losses.items():
                    self._tb.add_scalar(f"train/{key}", value, self.step)
                for key, value in lrs.items():
                    self._tb.add_scalar(f"lr/{key}", value, self.step)

    def _open_tensorboard(self) -> None:
        if not (self.cfg.tensorboard and self.ctx.is_main):
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning(
                "tensorboard=True but the tensorboard package is missing: pip install 'detclip-bench[tensorboard]'"
            )
            return
        self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train until ``schedule.epochs`` (or ``max_steps``, or an epoch callback says stop)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.ctx.is_main:
            atomic_write_json(self.out_dir / "config.json", config_to_dict(self.cfg))
        if resume:
            self.resume()
        elif self.ctx.is_main:
            self.metrics_path.unlink(missing_ok=True)
        self._open_tensorboard()
        self.ddp.train()
        bar = tqdm(
            total=self.total_steps, initial=self.step, disable=not self.progress, desc=self.cfg.name, dynamic_ncols=True
        )
        last_loss = math.nan
        loader = iter(self.loader) if self.step < self.total_steps and not self.stopped_early else iter(())
        folded = self.cfg.box_free_update == "folded"
        for batch in loader:
            t0 = time.perf_counter()
            lrs = {k: float(v) for k, v in group_lrs(self.scheduler, after_warmup=False).items()}
            # folded: a detection/grounding batch followed by a box-free one waits for it (one optimizer step)
            defer = folded and self._next_is_box_free(batch) and self.step + 1 < self.total_steps
            if self._skips_forward(batch):
                losses = {"forward_skipped": 1.0}  # its loss weight is 0: no gradient, exactly
            elif folded and not batch.anchored and not self.ctx.distributed:
                before = self._gradients()
                losses = self._forward_backward(batch, sync=not defer)
                losses.update(gradient_split(before, self._gradients()))
            else:
                losses = self._forward_backward(batch, sync=not defer)
            if not defer:
                losses.update(self._optimizer_step(anchored=batch.anchored or folded))
                self.optimizer_steps += 1
                if self.ema is not None:
                    self.ema.update(self.model, step=self.optimizer_steps)
            self.step += 1
            self.epoch = batch.epoch
            at_end = batch.position + 1 == self.steps_per_epoch
            self._cursor = (batch.epoch + 1, 0) if at_end else (batch.epoch, batch.position + 1)
            self._log(batch, losses, lrs, time.perf_counter() - t0)
            last_loss = losses.get("loss", math.nan)
            bar.update(1)
            bar.set_postfix(loss=f"{last_loss:.4f}", kind=batch.kind.value)
            epoch_done = batch.position == self.steps_per_epoch - 1
            if epoch_done:
                self.epoch = batch.epoch + 1
                if self.on_epoch_end is not None and self.on_epoch_end(self, batch.epoch):
                    self.stopped_early = True
            finished = self.step >= self.total_steps or self.stopped_early
            periodic = self.cfg.ckpt_every and self.step % self.cfg.ckpt_every == 0
            if not defer and (epoch_done or finished or periodic):  # never with a gradient still pending
                self.save()
            if finished:
                break
        bar.close()
        if self._tb is not None:
            self._tb.close()
        return {
            "steps": self.step,
            "epochs": self.epoch,
            "stopped_early": self.stopped_early,
            "last_loss": last_loss,
            "checkpoint": str(find_latest(self.ckpt_dir)) if self.ctx.is_main else None,
        }
