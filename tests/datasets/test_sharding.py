"""2 simulated ranks × 2 DataLoader workers read every record exactly once per epoch."""

from collections import Counter

import pytest
from torch.utils.data import DataLoader, get_worker_info

from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.sharding import (
    TorchMap,
    TorchStream,
    collate_samples,
    consumer_plan,
    distributed_sampler,
)
from tests.datasets.writers import jpeg_bytes, o365_v2, wds_shard

RANKS, WORKERS = 2, 2


def tag_worker(sample):
    return sample.record_id, get_worker_info().id


def _epoch_map(ds, pad):
    seen = []
    for rank in range(RANKS):
        sampler = distributed_sampler(ds, shuffle=True, seed=1, rank=rank, world_size=RANKS, pad=pad)
        loader = DataLoader(
            TorchMap(ds, transform=tag_worker),
            batch_size=2,
            sampler=sampler,
            num_workers=WORKERS,
            collate_fn=collate_samples,
        )
        seen += [(rank, *item) for batch in loader for item in batch]
    return seen


def test_map_style_unpadded_reads_each_record_once(tmp_path):
    ds = open_dataset(o365_v2(tmp_path, n_images=7), "o365")
    seen = _epoch_map(ds, pad=False)
    assert Counter(rid for _, rid, _ in seen) == Counter(str(k) for k in range(1, 8))
    assert {(rank, worker) for rank, _, worker in seen} == {(r, w) for r in range(RANKS) for w in range(WORKERS)}


def test_map_style_torch_sampler_pads_to_equal_length(tmp_path):
    ds = open_dataset(o365_v2(tmp_path, n_images=7), "o365")
    counts = Counter(rid for _, rid, _ in _epoch_map(ds, pad=True))
    assert set(counts) == {str(k) for k in range(1, 8)} and sum(counts.values()) == 8  # one record repeated


def _epoch_stream(source):
    seen = []
    for rank in range(RANKS):
        stream = TorchStream(source, transform=tag_worker, rank=rank, world_size=RANKS)
        loader = DataLoader(stream, batch_size=3, num_workers=WORKERS, collate_fn=collate_samples)
        seen += [(rank, *item) for batch in loader for item in batch]
    return seen


@pytest.mark.parametrize("n_shards", [3, 5])
def test_stream_shards_split_by_rank_and_worker(tmp_path, n_shards):
    keys = []
    for s in range(n_shards):
        items = [(f"{s:05d}{i:04d}", jpeg_bytes(8, 8), f"caption {s} {i}") for i in range(4)]
        keys += [k for k, _, _ in items]
        wds_shard(tmp_path / f"{s:05d}.tar", items)
    seen = _epoch_stream(open_dataset(tmp_path, "img2dataset-wds"))
    assert Counter(rid for _, rid, _ in seen) == Counter(keys)
    assert len({(rank, worker) for rank, _, worker in seen}) == RANKS * WORKERS


def test_single_shard_stream_is_split_within_the_shard(tmp_path):
    tsv = tmp_path / "cc3m.tsv"
    tsv.write_text("".join(f"caption {i}\thttps://x.example/{i}.jpg\n" for i in range(11)))
    seen = _epoch_stream(open_dataset(tsv))
    assert Counter(rid for _, rid, _ in seen) == Counter(f"line {i}" for i in range(1, 12))
    assert len({(rank, worker) for rank, _, worker in seen}) == RANKS * WORKERS


def test_consumer_plan_covers_every_record_once_for_any_counts():
    records = 7
    for n_shards in range(1, 10):
        for n_consumers in range(1, 9):
            got = Counter()
            for c in range(n_consumers):
                for shard, (k, n) in consumer_plan(n_shards, c, n_consumers):
                    got.update((shard, i) for i in range(records) if i % n == k)
            assert got == Counter((s, i) for s in range(n_shards) for i in range(records)), (n_shards, n_consumers)
