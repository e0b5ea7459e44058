"""Hybrid ("alternating") batch schedule: every iteration draws ONE source for the whole global batch.

The paper (appendix B, method.md §2) trains detection, grounding and image-text data in
alternation, each iteration using a single data kind on every GPU, with per-kind batch sizes.
The schedule across kinds is not stated; ours is a named config:

* ``each_once_shuffled`` (default): per epoch every source is covered once
  (``ceil(len * repeat / batch)`` iterations, the last batch topped up by wrapping around the
  source's own permutation), and the per-source iteration list is shuffled.
* ``each_once_interleaved``: the same iterations, spread evenly in a fixed order
  (source ``s``'s ``i``-th iteration sits at ``(i + 0.5) / n_s`` of the epoch).
* ``paired``: for ablations that add a box-free data kind (image-text, classification). The
  *anchored* sources (detection, grounding) are planned exactly as if they were alone: each
  source's permutation comes from its own generator keyed by its name, their order from a
  generator that never sees the other sources. The box-free steps are spread evenly between
  them, and they carry ``anchored=False`` so the trainer holds the LR schedule still on them.
  Two runs that differ only in their box-free sources therefore see the same detection and
  grounding batches, in the same order, with the same augmentation seeds (``seed_key``).

Resumable mid-epoch: every random choice of epoch ``e`` comes from
``np.random.default_rng([seed, e])``, so the state is just ``(epoch, position)`` and a resumed
run rebuilds exactly the same order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from detclip_bench.errors import UnknownNameError

__all__ = ["HYBRID_SCHEDULES", "HybridSampler", "PlannedStep", "rank_share"]


@dataclass(frozen=True)
class PlannedStep:
    epoch: int
    position: int  # index of this iteration within the epoch
    source: int  # index into the sampler's sources
    indices: np.ndarray  # the global batch: dataset indices (or stream offsets) of this source
    anchored: bool = True  # drives the LR schedule (False: a box-free step of a ``paired`` plan)
    seed_key: tuple[int, ...] = ()  # seeds this step's augmentation and dropout; () = (position,)

    def rng_key(self) -> tuple[int, ...]:
        return self.seed_key or (self.position,)


def _shuffled(counts: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    order = np.repeat(np.arange(len(counts)), counts)
    return order[rng.permutation(len(order))]


def _interleaved(counts: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    del rng  # deterministic by design
    keys = [((i + 0.5) / n, s) for s, n in enumerate(counts) for i in range(n)]
    return np.array([s for _, s in sorted(keys)], dtype=np.int64)


HYBRID_SCHEDULES: dict[str, Callable[[Sequence[int], np.random.Generator], np.ndarray] | None] = {
    "each_once_shuffled": _shuffled,
    "each_once_interleaved": _interleaved,
    "paired": None,  # planned by HybridSampler._paired_plan
}


def _name_key(name: str) -> int:
    """A stable 32-bit integer for a source name (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")


class HybridSampler:
    """Plans epochs of ``(source, global batch indices)`` and remembers where it is."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_sizes: Sequence[int],
        repeats: Sequence[int] | None = None,
        *,
        schedule: str = "each_once_shuffled",
        seed: int = 0,
        names: Sequence[str] | None = None,
        anchored: Sequence[bool] | None = None,
        steps: Sequence[int] | None = None,
        cap_box_free: bool = False,
    ) -> None:
        """``names``/``anchored`` are needed by the ``paired`` schedule (which sources drive the LR
        schedule); ``steps`` fixes a source's iterations per epoch (0 = ``ceil(len * repeat / batch)``).
        ``cap_box_free`` (``paired`` only): when the box-free sources plan more steps per epoch than the
        anchored ones, scale their counts down in proportion (largest remainder) to the anchored count, so
        that each box-free step can fold into an anchored one; :attr:`capped` says whether it applied."""
        if schedule not in HYBRID_SCHEDULES:
            raise UnknownNameError("hybrid schedule", repr(schedule), HYBRID_SCHEDULES)
        repeats = list(repeats) if repeats is not None else [1] * len(lengths)
        if not (len(lengths) == len(batch_sizes) == len(repeats)) or not lengths:
            raise ValueError("lengths, batch_sizes and repeats must be non-empty and equally long")
        if min(lengths) <= 0:
            raise ValueError(f"every source needs at least one sample, got lengths {list(lengths)}")
        self.lengths = [int(x) for x in lengths]
        self.batch_sizes = [int(x) for x in batch_sizes]
        self.repeats = [int(x) for x in repeats]
        self.schedule = schedule
        self.seed = int(seed)
        self.names = list(names) if names is not None else [f"source{i}" for i in range(len(self.lengths))]
        self.anchored = [bool(a) for a in anchored] if anchored is not None else [True] * len(self.lengths)
        self.steps = [int(s) for s in steps] if steps is not None else [0] * len(self.lengths)
        if not (len(self.names) == len(self.anchored) == len(self.steps) == len(self.lengths)):
            raise ValueError("names, anchored and steps must have one entry per source")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"source names must be unique, got {self.names}")
        if schedule == "paired" and not any(self.anchored):
            raise ValueError("the 'paired' schedule needs at least one anchored (detection/grounding) source")
        self.cap_box_free = bool(cap_box_free) and schedule == "paired"
        self.epoch = 0
        self.position = 0

    def _planned_counts(self) -> list[int]:
        return [
            k or math.ceil(n * r / b)
            for n, r, b, k in zip(self.lengths, self.repeats, self.batch_sizes, self.steps, strict=True)
        ]

    @property
    def capped(self) -> bool:
        return self.iters_per_source() != self._planned_counts()

    def iters_per_source(self) -> list[int]:
        counts = self._planned_counts()
        if not self.cap_box_free:
            return counts
        anchored = sum(k for k, a in zip(counts, self.anchored, strict=True) if a)
        free = [i for i, a in enumerate(self.anchored) if not a]
        total = sum(counts[i] for i in free)
        if total <= anchored:
            return counts
        shares = {i: counts[i] * anchored / total for i in free}
        for i in free:
            counts[i] = math.floor(shares[i])
        left = anchored - sum(counts[i] for i in free)
        for i in sorted(free, key=lambda i: (-(shares[i] - math.floor(shares[i])), i))[:left]:
            counts[i] += 1
        return counts

    def anchored_steps_per_epoch(self) -> int:
        """Iterations per epoch that move the LR schedule (all of them unless ``paired``)."""
        counts = self.iters_per_source()
        if self.schedule != "paired":
            return sum(counts)
        return sum(k for k, a in zip(counts, self.anchored, strict=True) if a)

    def _batches(self, s: int, count: int, rng: np.random.Generator) -> np.ndarray:
        n, r, b = self.lengths[s], self.repeats[s], self.batch_sizes[s]
        perm = rng.permutation(np.tile(np.arange(n, dtype=np.int64), r))
        return np.resize(perm, count * b).reshape(count, b)  # wraps around: the last batch is topped up

    def _paired_plan(self, epoch: int) -> list[PlannedStep]:
        counts = self.iters_per_source()
        batches = [
            self._batches(s, k, np.random.default_rng([self.seed, epoch, _name_key(self.names[s])]))
            for s, k in enumerate(counts)
        ]
        groups = []
        for anchored in (True, False):
            members = [s for s in range(len(counts)) if self.anchored[s] == anchored]
            sub_counts = [counts[s] for s in members]
            if anchored:
                order = _shuffled(sub_counts, np.random.default_rng([self.seed, epoch, _name_key("<anchored order>")]))
            else:
                order = _interleaved(sub_counts, np.random.default_rng(0))
            groups.append([members[i] for i in order.tolist()])
        anchors, free = groups
        # free step j sits just after the anchor steps before (j + 0.5) / n_free of the epoch
        keys = [((i + 0.5) / len(anchors), 0, i) for i in range(len(anchors))]
        keys += [((j + 0.5) / len(free), 1, j) for j in range(len(free))]
        taken = [0] * len(counts)
        plan = []
        for pos, (_, group, j) in enumerate(sorted(keys)):
            s = (anchors, free)[group][j]
            plan.append(PlannedStep(epoch, pos, s, batches[s][taken[s]], anchored=group == 0, seed_key=(group, j)))
            taken[s] += 1
        return plan

    def __len__(self) -> int:
        """Iterations per epoch."""
        return sum(self.iters_per_source())

    def epoch_plan(self, epoch: int) -> list[PlannedStep]:
        if self.schedule == "paired":
            return self._paired_plan(epoch)
        rng = np.random.default_rng([self.seed, epoch])
        counts = self.iters_per_source()
        per_source = [self._batches(s, k, rng) for s, k in enumerate(counts)]
        order = HYBRID_SCHEDULES[self.schedule](counts, rng)
        taken = [0] * len(counts)
        plan = []
        for pos, s in enumerate(order.tolist()):
            plan.append(PlannedStep(epoch, pos, s, per_source[s][taken[s]]))
            taken[s] += 1
        return plan

    def __iter__(self) -> Iterator[PlannedStep]:
        """Yield the remaining steps of the current epoch, then following epochs, forever."""
        while True:
            plan = self.epoch_plan(self.epoch)
            while self.position < len(plan):
                step = plan[self.position]
                self.position += 1
                yield step
            self.epoch += 1
            self.position = 0

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "schedule": self.schedule,
            "lengths": list(self.lengths),
            "batch_sizes": list(self.batch_sizes),
        }

    def load_state_dict(self, state: dict) -> None:
        if list(state["lengths"]) != self.lengths or list(state["batch_sizes"]) != self.batch_sizes:
            raise ValueError(
                f"checkpoint sampler was built for lengths {state['lengths']} / batches {state['batch_sizes']}, "
                f"this run has {self.lengths} / {self.batch_sizes}: resuming would change the data order"
            )
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.seed, self.schedule = int(state["seed"]), str(state["schedule"])


def rank_share(indices: np.ndarray, rank: int, world_size: int, micro_batch: int = 0) -> list[np.ndarray]:
    """This rank's contiguous share of a global batch, split into gradient-accumulation micro-batches."""
    total = len(indices)
    if total % world_size:
        raise ValueError(f"global batch {total} is not divisible by world size {world_size}")
    per_rank = total // world_size
    mine = indices[rank * per_rank : (rank + 1) * per_rank]
    micro = micro_batch or per_rank
    if per_rank % micro:
        raise ValueError(f"per-rank batch {per_rank} is not divisible by micro_batch {micro}")
    return [mine[i : i + micro] for i in range(0, per_rank, micro)]
