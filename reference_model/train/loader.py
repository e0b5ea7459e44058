"""Turns the hybrid sampler's plan into this rank's collated micro-batches.

Map-style sources (``__len__``/``__getitem__``) are indexed by the plan; with ``num_workers > 0``
a ``torch.utils.data.DataLoader`` collates their steps in worker processes (the plan, less the
stream steps, is its sampler, one item per iteration). Each stream source gets a DataLoader of
its own over :class:`StreamSteps`: whole shards per (rank, worker) reader, so a rank reads about
1/world of the bytes, and workers decode and collate. The main process merges the feeds in plan
order. A resumed run restarts each stream reader at the exact record its interrupted epoch had
reached, given the same world size and ``num_workers`` (docs/training_input.md). Every collate
gets its own generator seeded from
``(seed, epoch, position, rank, micro)``, so augmentation and negative sampling do not depend on
which worker ran them or on whether the run was resumed. A collator may offer
``prepare_records(pairs, source)``: a stream reader's ``(shard, record)`` pairs pass through it, in the
worker, before they are cut into steps (:class:`DetCLIPv2Collator` attaches caption noun chunks there).
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detclip_bench.datasets.noun_chunks import NOUN_CHUNKS_META
from detclip_bench.datasets.sharding import consumer_plan
from detclip_bench.schema import DataKind
from reference_model.train.config import DataSourceConfig
from reference_model.train.noun_chunks import with_noun_chunks
from reference_model.train.sampler import HybridSampler, PlannedStep, rank_share

__all__ = ["Collator", "DetCLIPv2Collator", "HybridLoader", "StepBatch", "StreamSteps", "is_map_style", "source_length"]

Collator = Callable[[list, DataSourceConfig, Any, np.random.Generator], Any]

log = logging.getLogger("detclip_bench.train")

MAKE_DICTIONARY_HINT = (
    "detclip-bench data make-dictionary --o365 <o365 train json> --goldg <goldg json> "
    "--out {path}  (docs/concept_dictionary.md)"
)


def _make_dictionary_hint(path) -> str:
    """The command that writes ``path``: ``--out`` is the folder (make-dictionary names the file
    concept_dictionary.json); another file name needs the file spelling, which make-dictionary still takes."""
    p = Path(str(path))
    return MAKE_DICTIONARY_HINT.format(path=p.parent if p.name == "concept_dictionary.json" else p)


UNDEFINED_WARN_FRACTION = 0.5  # warn once per source when more positives than this lack a definition


class DetCLIPv2Collator:
    """The DetCLIPv2 model's own collate (resize, multi-scale, flip, concept sampling, enrichment).

    ``concept_dictionary`` names a json of definitions (:class:`ConceptDictionary`); it is read
    once per process, lazily, so the collator pickles cheaply into DataLoader workers. Grounding
    sources draw their negatives from the dictionary's concepts [A] (a flat training dictionary
    only, see :attr:`ConceptDictionary.can_sample_negatives`). ``noun_phrase_model`` is the spaCy
    model for image-text captions (the model config's ``noun_phrase_model``; None = the default); a stream's
    captions are parsed ahead, in :meth:`prepare_records`, or read from the shards' noun-chunk sidecars.
    """

    def __init__(self, concept_dictionary: str = "", noun_phrase_model: str | None = None) -> None:
        self.concept_dictionary = concept_dictionary
        self.noun_phrase_model = noun_phrase_model
        self._dictionary = None
        self._noun_phrases = None
        self._vocabularies: dict[int, tuple] = {}
        self._warned: set = set()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_dictionary": None, "_noun_phrases": None, "_vocabularies": {}, "_warned": set()}

    def _warn_once(self, key: Any, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    def negative_pool(self, dataset: Any, source: DataSourceConfig) -> tuple:
        """Where ``source``'s negatives come from: the dictionary's concepts for grounding, the dataset's
        vocabulary otherwise (never an evaluation vocabulary for grounding)."""
        if source.kind is DataKind.GROUNDING:
            d = self.dictionary()
            if d is not None and d.can_sample_negatives:
                return d.concepts()
            why = (
                "no concept_dictionary is configured"
                if d is None
                else f"{self.concept_dictionary} is an evaluation vocabulary ({d.layout} layout), not a training dictionary"
            )
            self._warn_once(
                ("negatives", source.name),
                f"grounding source {source.name!r}: images get only their own phrases, no sampled "
                f"negatives (M = {source.concepts_per_image} in the paper), because {why}; build one "
                f"with `{MAKE_DICTIONARY_HINT.format(path='<data root>')}`",
            )
        return self.vocabulary(dataset)

    def noun_phrases(self):
        """The caption noun-phrase extractor, built once per process with the configured spaCy model."""
        if self._noun_phrases is None:
            # deferred: reference_model.detclipv2 pulls in timm/torchvision (and tests patch this class)
            from reference_model.detclipv2.noun_phrases import NounPhraseExtractor

            self._noun_phrases = (
                NounPhraseExtractor() if self.noun_phrase_model is None else NounPhraseExtractor(self.noun_phrase_model)
            )
        return self._noun_phrases

    def prepare_records(self, pairs: Iterator[tuple[Any, Any]], source: DataSourceConfig) -> Iterator:
        """A stream reader's ``(shard, record)`` pairs → its records; image-text records get their captions' noun
        chunks here, in the worker that reads the shard: from the shard's sidecar (``source.noun_chunks`` names
        a folder of them; else beside the shard) when current, else one spaCy parse per block read ahead."""
        extractor = self.noun_phrases() if source.kind is DataKind.IMAGE_TEXT else None
        if getattr(extractor, "identity", None) is None:  # not image-text, or the heuristic (nothing to parse)
            return (record for _, record in pairs)
        return with_noun_chunks(pairs, extractor, source.noun_chunks)

    def check_definitions(self, samples: list, source: DataSourceConfig) -> None:
        """Warn (once per source) when the configured dictionary leaves most positives of a detection/grounding
        batch without a definition: evaluation prompts (LVIS) are "name, definition"."""
        d = self.dictionary()
        if d is None or source.kind not in (DataKind.DETECTION, DataKind.GROUNDING):
            return  # a run without a dictionary is warned about once, at Trainer start
        concepts = [c for s in samples for c in s.concepts]
        bare = sum(1 for c in concepts if not c.definition and not d.lookup(c.name))
        if concepts and bare / len(concepts) > UNDEFINED_WARN_FRACTION:
            self._warn_once(
                ("definitions", source.name),
                f"data source {source.name!r}: {bare} of {len(concepts)} positive concepts in a batch have "
                f"no definition in concept dictionary {self.concept_dictionary}, so their training "
                "prompts are bare names while evaluation prompts (LVIS) are 'name, definition'; rebuild "
                f"it from this source: `{_make_dictionary_hint(self.concept_dictionary)}`",
            )

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
            from reference_model.detclipv2.concept_dictionary import ConceptDictionary  # deferred: timm/torchvision

            if not Path(self.concept_dictionary).is_file():
                raise FileNotFoundError(
                    f"concept dictionary {self.concept_dictionary} not found; build it with "
                    f"`{_make_dictionary_hint(self.concept_dictionary)}`, or set concept_dictionary='' "
                    "(--set concept_dictionary=) to train with bare names"
                )
            self._dictionary = ConceptDictionary.from_file(self.concept_dictionary)
        return self._dictionary

    def __call__(self, samples: list, source: DataSourceConfig, dataset: Any, rng: np.random.Generator) -> Any:
        from reference_model.detclipv2 import InputSpec, collate_train  # deferred: timm/torchvision

        spec = InputSpec(
            kind=source.kind,
            size=source.size,
            multiscale_short=source.multiscale_short,
            flip=source.flip,
            concepts_per_image=source.concepts_per_image,
            federated_fill=source.federated_fill,
        )
        self.check_definitions(samples, source)
        noun_phrases = self.noun_phrases() if source.kind is DataKind.IMAGE_TEXT else None
        if hasattr(noun_phrases, "batch"):  # chunks parsed ahead (prepare_records), the rest in one spaCy pass
            ahead = {s.caption: s.meta[NOUN_CHUNKS_META] for s in samples if NOUN_CHUNKS_META in s.meta}
            noun_phrases = noun_phrases.batch([s.caption for s in samples], chunks=ahead)
        return collate_train(
            samples,
            spec,
            vocabulary=self.negative_pool(dataset, source),
            rng=rng,
            dictionary=self.dictionary(),
            noun_phrases=noun_phrases,
        )


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
    anchored: bool = True  # moves the LR schedule (see HybridSampler's 'paired' plan)
    seed_key: tuple[int, ...] = ()  # what seeds this step's randomness (the sampler's rng_key)


class HybridLoader:
    def __init__(
        self,
        datasets: Sequence[Any],
        sources: Sequence[DataSourceConfig],
        sampler: HybridSampler,
        *,
        collate: Collator | None = None,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        self.datasets = list(datasets)
        self.sources = list(sources)
        self.sampler = sampler
        self.collate = collate or DetCLIPv2Collator()
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.num_workers = num_workers  # map-style steps and every stream get workers (see the module doc)

    def _rng(self, step: PlannedStep, micro: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, step.epoch, *step.rng_key(), self.rank, micro])

    def load(self, step: PlannedStep, records: Iterator | None = None) -> StepBatch:
        """This rank's micro-batches of ``step``: indexed for a map-style source, taken in order
        from ``records`` (a :class:`StreamSteps` reader) for a stream."""
        source, dataset = self.sources[step.source], self.datasets[step.source]
        shares = rank_share(step.indices, self.rank, self.world_size, source.micro_batch)
        micro = []
        for i, share in enumerate(shares):
            if is_map_style(dataset):
                samples = [dataset[int(j)] for j in share]
            elif records is None:
                raise TypeError(f"data source {source.name!r} is a stream: its steps come from iterating the loader")
            else:
                samples = list(itertools.islice(records, len(share)))
            micro.append(self.collate(samples, source, dataset, self._rng(step, i)))
        return StepBatch(
            step.epoch, step.position, source.name, source.kind, micro, anchored=step.anchored, seed_key=step.rng_key()
        )

    def __getitem__(self, step: PlannedStep) -> StepBatch:  # DataLoader entry point
        return self.load(step)

    def state_dict(self) -> dict:
        """The stream reader layout: exact mid-epoch resume of a stream needs the same one."""
        return {"stream_readers": self.world_size * max(1, self.num_workers)}

    def load_state_dict(self, state: dict) -> None:
        readers = self.state_dict()["stream_readers"]
        streams = [s.name for s, d in zip(self.sources, self.datasets, strict=True) if not is_map_style(d)]
        if streams and state.get("stream_readers", readers) != readers:
            warnings.warn(
                f"resuming with {readers} stream readers (world size x workers) instead of "
                f"{state['stream_readers']}: the rest of the interrupted epoch of {', '.join(streams)} is re-split, "
                "so some of its records may repeat or be missed in that epoch (later epochs are exact)",
                stacklevel=2,
            )

    def _workers(self, dataset: Any, **kw: Any) -> Iterator:
        return iter(
            torch.utils.data.DataLoader(
                dataset,
                batch_size=None,
                num_workers=self.num_workers,
                collate_fn=_identity,
                persistent_workers=False,
                **kw,
            )
        )

    def __iter__(self) -> Iterator[StepBatch]:
        """Steps from the sampler's (epoch, position) on, forever; each stream source and the map-style
        sources together are fed by their own DataLoader (workers) and merged here in plan order."""
        start = (self.sampler.epoch, self.sampler.position)
        streams = {s for s, d in enumerate(self.datasets) if not is_map_style(d)}
        feeds: dict[int, Iterator[StepBatch]] = {}
        for s in streams:
            steps = StreamSteps(self, s, start)
            feeds[s] = self._workers(steps) if self.num_workers > 0 else iter(steps)
        mapped = None
        if self.num_workers > 0 and len(streams) < len(self.datasets):
            mapped = self._workers(self, sampler=_PlanFrom(self.sampler, start, skip=streams))
        for step in self.sampler:
            if step.source in feeds:
                batch = next(feeds[step.source])
            elif mapped is not None:
                batch = next(mapped)
            else:
                batch = self.load(step)
            if (batch.epoch, batch.position) != (step.epoch, step.position):
                raise RuntimeError(
                    f"loader out of step: planned epoch {step.epoch} position {step.position}, "
                    f"got epoch {batch.epoch} position {batch.position}"
                )
            yield batch


class _PlanFrom:
    """The plan from ``start`` on, forever, without the steps of the ``skip`` sources (a DataLoader sampler
    that leaves the HybridSampler's own position alone)."""

    def __init__(self, sampler: HybridSampler, start: tuple[int, int], skip: set[int]) -> None:
        self.sampler, self.start, self.skip = sampler, start, skip

    def __iter__(self) -> Iterator[PlannedStep]:
        epoch, position = self.start
        while True:
            yield from (p for p in self.sampler.epoch_plan(epoch)[position:] if p.source not in self.skip)
            epoch, position = epoch + 1, 0


class StreamSteps(torch.utils.data.IterableDataset):
    """One stream source's collated steps for this rank, in plan order, from ``start`` on, forever.

    Readers: with ``W = max(1, num_workers)``, rank ``r``'s reader ``v`` is consumer
    ``r * W + v`` of ``world_size * W`` in :func:`~detclip_bench.datasets.sharding.consumer_plan`
    (whole shards when there are at least that many; the shards' order is shuffled per epoch,
    the same on every rank). Within an epoch the source's ``j``-th step is served by reader
    ``j % W``, so which records a step gets depends only on the plan, never on timing. A
    DataLoader hands its ``n``-th item to worker ``n % W``: each worker therefore serves exactly
    one reader per epoch (a rotation when the start is not an epoch's first step). A reader that
    runs out of records before the epoch's last step re-reads its own shards; one with more
    records than its steps take leaves the rest for that epoch. Resuming at (epoch, position)
    skips, per reader, the records its earlier steps of that epoch took (read, not decoded).
    """

    def __init__(self, loader: HybridLoader, source: int, start: tuple[int, int]) -> None:
        self.loader, self.source, self.start = loader, source, start
        self.readers = max(1, loader.num_workers)

    def __iter__(self) -> Iterator[StepBatch]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        epoch, position = self.start
        served = 0  # items this DataLoader handed out before the current epoch (all workers)
        while True:
            steps = [p for p in self.loader.sampler.epoch_plan(epoch) if p.source == self.source]
            first = sum(p.position < position for p in steps)
            mine = [j for j in range(first, len(steps)) if (served + j - first) % self.readers == worker]
            if mine:
                reader = mine[0] % self.readers
                earlier = sum(len(steps[j].indices) for j in range(first) if j % self.readers == reader)
                records = self.records(epoch, reader, earlier // self.loader.world_size)
                for j in mine:
                    yield self.loader.load(steps[j], records)
            served += len(steps) - first
            epoch, position = epoch + 1, 0

    def records(self, epoch: int, reader: int, skip: int = 0) -> Iterator:
        """Reader ``reader`` of this rank in ``epoch``: its shards, cycled, after ``skip`` records."""
        loader = self.loader
        dataset, name = loader.datasets[self.source], loader.sources[self.source].name
        shards = list(dataset.shards()) if _sharded(dataset) else [None]
        order = np.random.default_rng([loader.seed, epoch, self.source]).permutation(len(shards))
        consumer, consumers = loader.rank * self.readers + reader, loader.world_size * self.readers
        plan = [(shards[int(order[i])], part) for i, part in consumer_plan(len(shards), consumer, consumers)]

        def cycle() -> Iterator[tuple[Any, Any]]:
            while True:
                count = 0
                for shard, part in plan:
                    for record in _read_shard(dataset, shard, part):
                        count += 1
                        yield shard, record
                if count == 0:
                    raise ValueError(f"data source {name!r}: stream reader {consumer} of {consumers} got no records")

        pairs = itertools.islice(cycle(), skip, None)  # skipped records are read, never prepared nor decoded
        prepare = getattr(loader.collate, "prepare_records", None)
        return prepare(pairs, loader.sources[self.source]) if prepare is not None else (r for _, r in pairs)


def _sharded(dataset: Any) -> bool:
    return hasattr(dataset, "shards") and hasattr(dataset, "iter_shard")


def _read_shard(dataset: Any, shard: Any, part: tuple[int, int]) -> Iterator:
    """Every ``part[1]``-th record of a shard from ``part[0]``; a plain iterable is one shard."""
    if shard is None:
        return itertools.islice(iter(dataset), part[0], None, part[1])
    return dataset.iter_shard(shard, part)


def _identity(x: Any) -> Any:
    return x
