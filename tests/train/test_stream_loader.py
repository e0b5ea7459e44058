"""Training streams are split by whole shards per (rank, worker) reader, read in DataLoader workers, and
resume at the exact record after a SIGKILL (docs/training_input.md)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from reference_model.train.loader import HybridLoader
from reference_model.train.sampler import HybridSampler
from tests.datasets.writers import jpeg_bytes, wds_shard
from tests.train.stream_toy import N_DET, IdToyDataset, OpenLog, id_collate, stream_config
from tests.train.toy import sigkill_after_steps

ROOT = Path(__file__).resolve().parents[2]
SHARDS, PER_SHARD = 4, 6


def write_stream(root: Path, shards: int = SHARDS, per_shard: int = PER_SHARD) -> list[str]:
    keys = []
    for s in range(shards):
        items = [
            (f"{s:05d}{i:04d}", jpeg_bytes(16, 16, (40 * s, 30 * i, 90)), f"caption {s} {i}") for i in range(per_shard)
        ]
        wds_shard(root / f"{s:05d}.tar", items)
        (root / f"{s:05d}_stats.json").write_text(json.dumps({"count": per_shard, "successes": per_shard}))
        keys += [k for k, _, _ in items]
    return keys


def _loader(wds: Path, rank: int, world: int, workers: int, log: Path, start=(0, 0)) -> HybridLoader:
    cfg = stream_config(str(wds), workers=workers, batch=4)
    sampler = HybridSampler([N_DET, SHARDS * PER_SHARD], [s.batch_size for s in cfg.data], seed=cfg.seed)
    sampler.epoch, sampler.position = start
    datasets = [IdToyDataset(N_DET, 1), OpenLog(wds, log)]
    return HybridLoader(
        datasets, cfg.data, sampler, collate=id_collate, rank=rank, world_size=world, seed=cfg.seed, num_workers=workers
    )


def _run(loader: HybridLoader, steps: int) -> list[tuple[int, int, str, tuple[str, ...]]]:
    it = iter(loader)
    try:
        return [
            (b.epoch, b.position, b.source, tuple(i for m in b.micro for i in m.ids))
            for b in itertools.islice(it, steps)
        ]
    finally:
        it.close()  # shuts the DataLoader workers down


def _stream_ids(rows, epoch=0):
    return [i for e, _, src, ids in rows if src == "cc" and e == epoch for i in ids]


STEPS_PER_EPOCH = 3 + 6  # det ceil(10/4) + cc 24/4


@pytest.mark.parametrize("workers", [0, 2])
def test_two_ranks_read_disjoint_whole_shards_and_cover_the_epoch(tmp_path, workers):
    keys = write_stream(tmp_path / "wds")
    per_rank, opened = {}, {}
    for rank in range(2):
        log = tmp_path / f"opened.{rank}.log"
        rows = _run(_loader(tmp_path / "wds", rank, 2, workers, log), STEPS_PER_EPOCH)
        assert [(e, p) for e, p, _, _ in rows] == [(0, p) for p in range(STEPS_PER_EPOCH)]
        per_rank[rank] = _stream_ids(rows)
        opens = [line.split() for line in log.read_text().splitlines()]
        if workers:  # workers prefetch into epoch 1: epoch 0 is each worker's (one reader's) first shard
            opens = list({pid: shard for pid, shard in reversed(opens)}.items())
        opened[rank] = [shard for _, shard in opens]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert Counter(per_rank[0] + per_rank[1]) == Counter(keys)  # the whole epoch, each record once
    # whole shards: each rank opens its own, once, and reads half of the bytes
    assert all(len(set(o)) == len(o) == 2 for o in opened.values()) and not set(opened[0]) & set(opened[1])
    assert sorted(opened[0] + opened[1]) == sorted(str(tmp_path / "wds" / f"{s:05d}.tar") for s in range(SHARDS))
    sizes = [sum(os.path.getsize(p) for p in opened[r]) for r in range(2)]
    assert abs(sizes[0] - sizes[1]) <= 0.1 * sum(sizes)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_reads_exactly_the_remaining_records(tmp_path, workers):
    write_stream(tmp_path / "wds")
    full = _run(_loader(tmp_path / "wds", 1, 2, workers, tmp_path / "log"), 2 * STEPS_PER_EPOCH)
    for position in (1, 4, 7):
        resumed = _run(
            _loader(tmp_path / "wds", 1, 2, workers, tmp_path / "log", start=(0, position)),
            2 * STEPS_PER_EPOCH - position,
        )
        assert resumed == full[position:]


def test_resume_with_another_reader_layout_warns(tmp_path):
    write_stream(tmp_path / "wds")
    loader = _loader(tmp_path / "wds", 0, 1, 2, tmp_path / "log")
    assert loader.state_dict() == {"stream_readers": 2}
    with pytest.warns(UserWarning, match="re-split"):
        loader.load_state_dict({"stream_readers": 4})


def _env():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _cmd(out, wds, *flags):
    return [sys.executable, "-m", "tests.train.stream_toy", str(out), str(wds), *flags]


def _seen(out: Path) -> list[list[str]]:
    """Per process (in start order), the record ids of every forward it ran."""
    logs = sorted(out.glob("seen.*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
    return [[json.loads(line)["ids"] for line in p.read_text().splitlines()] for p in logs]


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_sigkill_mid_epoch_then_resume_trains_on_the_same_records(tmp_path):
    keys = write_stream(tmp_path / "wds")
    total = 2 * STEPS_PER_EPOCH
    ref = subprocess.run(_cmd(tmp_path / "ref", tmp_path / "wds"), env=_env(), capture_output=True, timeout=180)
    assert ref.returncode == 0, ref.stderr.decode()[-3000:]
    (want,) = _seen(tmp_path / "ref")
    assert len(want) == total
    stream_steps = [ids for ids in want if ids[0].isdigit()]
    for epoch in range(2):  # uninterrupted: each epoch trains on every stream record exactly once
        assert Counter(i for ids in stream_steps[6 * epoch : 6 * (epoch + 1)] for i in ids) == Counter(keys)

    metrics = tmp_path / "run" / "metrics.jsonl"
    killed_at = sigkill_after_steps(
        _cmd(tmp_path / "run", tmp_path / "wds", "--slow"), _env(), metrics, 3, timeout=120, poll=0.01
    )
    assert 3 <= killed_at < STEPS_PER_EPOCH - 1  # mid-epoch 0

    resumed = subprocess.run(
        _cmd(tmp_path / "run", tmp_path / "wds", "--resume"), env=_env(), capture_output=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-3000:]
    before, after = _seen(tmp_path / "run")
    checkpoint_step = total - len(after)  # the resumed run redoes the steps after its checkpoint
    assert killed_at - 1 <= checkpoint_step <= killed_at  # the kill may land before the step's checkpoint
    got = before[:checkpoint_step] + after
    assert got == want  # exact: no stream record lost or repeated by the kill
    assert [r["step"] for r in _metrics(tmp_path / "run")] == list(range(1, total + 1))
    assert [r["loss"] for r in _metrics(tmp_path / "run")] == pytest.approx(
        [r["loss"] for r in _metrics(tmp_path / "ref")], rel=1e-6
    )
