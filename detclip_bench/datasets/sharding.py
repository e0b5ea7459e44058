"""Reading each record exactly once per epoch across torch.distributed ranks × DataLoader workers.

* Map sources: :func:`distributed_sampler` (torch's ``DistributedSampler``; ``pad=False`` gives an
  unpadded variant for evaluation, where a duplicated image would be scored twice). DataLoader
  workers then split the sampler's indices by themselves.
* Streams: :class:`TorchStream` gives consumer ``c = rank * workers + worker`` of ``C`` consumers
  whole shards ``c, c + C, ...`` when there are at least ``C`` shards; otherwise each shard is
  shared by the consumers ``≡ shard (mod n_shards)``, which take every k-th record of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler, IterableDataset, get_worker_info

from detclip_bench import dist
from detclip_bench.datasets.base import MapSource, StreamSource
from detclip_bench.schema import Sample

__all__ = ["TorchMap", "TorchStream", "collate_samples", "consumer_plan", "distributed_sampler"]


def collate_samples(batch: list[Sample]) -> list[Sample]:
    """Keep samples as they are: images, boxes and concepts differ in size per sample."""
    return list(batch)


class TorchMap(Dataset):
    """A map source as a torch ``Dataset`` (optionally with a per-sample transform)."""

    def __init__(self, source: MapSource, transform=None) -> None:
        self.source, self.transform = source, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        sample = self.source[index]
        return self.transform(sample) if self.transform else sample


class _UnpaddedDistributedSampler(DistributedSampler):
    """Strided indices with no padding: ranks may get one record fewer, none is seen twice."""

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(len(self.dataset), generator=g).tolist()
        else:
            indices = list(range(len(self.dataset)))
        return iter(indices[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))


def distributed_sampler(
    dataset,
    *,
    shuffle: bool = True,
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    pad: bool = True,
) -> DistributedSampler:
    """torch's DistributedSampler (pads to equal length, as DDP training needs), or ``pad=False``."""
    rank = dist.get_rank() if rank is None else rank
    world_size = dist.get_world_size() if world_size is None else world_size
    cls = DistributedSampler if pad else _UnpaddedDistributedSampler
    return cls(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)


def consumer_plan(n_shards: int, consumer: int, n_consumers: int) -> list[tuple[int, tuple[int, int]]]:
    """(shard index, (part, parts)) pairs that consumer ``consumer`` of ``n_consumers`` reads."""
    if n_shards >= n_consumers:
        return [(s, (0, 1)) for s in range(consumer, n_shards, n_consumers)]
    shard = consumer % n_shards
    sharing = [c for c in range(n_consumers) if c % n_shards == shard]
    return [(shard, (sharing.index(consumer), len(sharing)))]


class TorchStream(IterableDataset):
    """A stream source as a torch ``IterableDataset`` split by (rank, worker).

    ``rank``/``world_size`` default to torch.distributed's (1 process when none), so the same
    object works on one GPU or many.
    """

    def __init__(
        self, source: StreamSource, transform=None, rank: int | None = None, world_size: int | None = None
    ) -> None:
        self.source, self.transform = source, transform
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
        rank = dist.get_rank() if self.rank is None else self.rank
        world = dist.get_world_size() if self.world_size is None else self.world_size
        shards = self.source.shards()
        if not shards:
            return
        for shard_idx, part in consumer_plan(len(shards), rank * n_workers + worker, world * n_workers):
            for sample in self.source.iter_shard(shards[shard_idx], part):
                yield self.transform(sample) if self.transform else sample
