"""Turns the hybrid sampler's plan into this rank's collated micro-batches.

Map-style sources (``__len__``/``__getitem__``) are indexed by the plan; with ``num_workers > 0``
a ``torch.utils.data.DataLoader`` collates steps in worker processes (the plan is the
DataLoader's sampler, one item per iteration). Streams (plain iterables) are split across ranks
round-robin (:func:`distributed.shard_stream`) and read in order; a resumed run skips the records
the interrupted epoch already consumed. Every collate gets its own generator seeded from
``(seed, epoch, position, rank, micro)``, so augmentation and negative sampling do not depend on
which worker ran them or on whether the run was resumed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from detclip_bench.schema import DataKind
from reference_model.train.config import DataSourceConfig
from reference_model.train.distributed import shard_stream
from reference_model.train.sampler import HybridSampler, PlannedStep, rank_share

__all__ = ["Collator", "DetCLIPv2Collator", "HybridLoader", "StepBatch", "is_map_style", "source_length"]

Collator = Callable[[list, DataSourceConfig, Any, np.random.Generator], Any]


class DetCLIPv2Collator:
    """The DetCLIPv2 model's own collate (resize, multi-scale, flip, concept sampling, enrichment).

    ``concept_dictionary`` names a json of definitions (:class:`ConceptDictionary`); it is read
    once per process, lazily, so the collator pickles cheaply into DataLoader workers.
    """

    def __init__(self, concept_dictionary: str = "") -> None:
        self.concept_dictionary = concept_dictionary
        self._dictionary = None
        self._vocabularies: dict[int, tuple] = {}

    def __getstate__(self) -> dict:
        return {"concept_dictionary": self.concept_dictionary, "_dictionary": None, "_vocabularies": {}}

    def vocabulary(self, dataset: Any) -> tuple:
        """The dataset's concepts (negatives are sampled from them), read once per dataset.

        Enrichment happens in :func:`collate_train`, the one place that applies the dictionary."""
        key = id(dataset)
        if key not in self._vocabularies:
            vocab = getattr(dataset, "vocabulary", ())
            self._vocabularies[key] = tuple(vocab() if callable(vocab) else vocab)
        return self._vocabularies[key]

    def dictionary(self):
        if self.concept_dictionary and self._dictionary is None:
            from reference_model.detclipv2.concept_dictionary import ConceptDictionary

            self._dictionary = ConceptDictionary.from_file(self.concept_dictionary)
        return self._dictionary

    def __call__(self, samples: list, source: DataSourceConfig, dataset: Any, rng: np.random.Generator) -> Any:
        from reference_model.detclipv2 import InputSpec, collate_train

        spec = InputSpec(kind=source.kind, size=source.size, multiscale_short=source.multiscale_short,
                         flip=source.flip, concepts_per_image=source.concepts_per_image)
        return collate_train(samples, spec, vocabulary=self.vocabulary(dataset), rng=rng,
                             dictionary=self.dictionary())


def is_map_style(dataset: Any) -> bool:
    return hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")


def source_length(dataset: Any, source: DataSourceConfig) -> int:
    if source.epoch_size:
        return source.epoch_size
    if hasattr(dataset, "__len__"):
        return len(dataset)
    declared = dataset.declared_size() if hasattr(dataset, "declared_size") else None
    if declared:
        return declared  # e.g. img2dataset's _stats.json successes
    raise ValueError(f"data source {source.name!r} is a stream without a known size: set epoch_size in its config")


@dataclass
class StepBatch:
    epoch: int
    position: int
    source: str
    kind: DataKind
    micro: list[Any]  # collated micro-batches for this rank (gradient accumulation)


class HybridLoader:
    def __init__(self, datasets: Sequence[Any], sources: Sequence[DataSourceConfig], sampler: HybridSampler,
                 *, collate: Collator | None = None, rank: int = 0, world_size: int = 1,
                 seed: int = 0, num_workers: int = 0) -> None:
        self.datasets = list(datasets)
        self.sources = list(sources)
        self.sampler = sampler
        self.collate = collate or DetCLIPv2Collator()
        self.rank, self.world_size, self.seed = rank, world_size, seed
        has_stream = any(not is_map_style(d) for d in self.datasets)
        self.num_workers = 0 if has_stream else num_workers  # stream cursors live in this process
        self._streams: dict[int, tuple[int, Iterator]] = {}

    def _rng(self, step: PlannedStep, micro: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, step.epoch, step.position, self.rank, micro])

    def _stream_records(self, step: PlannedStep, count: int) -> list:
        s = step.source
        epoch, it = self._streams.get(s, (-1, None))
        if epoch != step.epoch or it is None:
            plan = self.sampler.epoch_plan(step.epoch)
            earlier = sum(1 for p in plan[:step.position] if p.source == s)
            it = _restarting(self.datasets[s], self.rank, self.world_size, self.sources[s].name)
            it = itertools.islice(it, earlier * count, None)
            self._streams[s] = (step.epoch, it)
        return list(itertools.islice(it, count))

    def load(self, step: PlannedStep) -> StepBatch:
        source, dataset = self.sources[step.source], self.datasets[step.source]
        shares = rank_share(step.indices, self.rank, self.world_size, source.micro_batch)
        micro = []
        for i, share in enumerate(shares):
            if is_map_style(dataset):
                samples = [dataset[int(j)] for j in share]
            else:
                samples = self._stream_records(step, len(share))
            micro.append(self.collate(samples, source, dataset, self._rng(step, i)))
        return StepBatch(step.epoch, step.position, source.name, source.kind, micro)

    def __getitem__(self, step: PlannedStep) -> StepBatch:  # DataLoader entry point
        return self.load(step)

    def __iter__(self) -> Iterator[StepBatch]:
        if self.num_workers == 0:
            return (self.load(step) for step in self.sampler)
        loader = torch.utils.data.DataLoader(self, sampler=self.sampler, batch_size=None, num_workers=self.num_workers,
                                             collate_fn=_identity, persistent_workers=False)
        return iter(loader)


def _restarting(stream: Any, rank: int, world_size: int, name: str) -> Iterator:
    """This rank's shard of a stream, re-opened whenever it runs out (an epoch may wrap around)."""
    while True:
        empty = True
        for record in shard_stream(stream, rank, world_size):
            empty = False
            yield record
        if empty:
            raise ValueError(f"data source {name!r}: rank {rank} got no records from the stream")


def _identity(x: Any) -> Any:
    return x
