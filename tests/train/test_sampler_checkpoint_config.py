import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from detclip_bench.errors import DataError
from reference_model.train import checkpoint as ckpt_mod
from reference_model.train.checkpoint import find_latest, load_checkpoint, save_checkpoint
from reference_model.train.config import apply_overrides
from reference_model.train.sampler import HybridSampler, rank_share
from tests.train.toy import ToyModel, toy_config


@pytest.mark.parametrize("schedule", ["each_once_shuffled", "each_once_interleaved"])
def test_each_source_covered_once_per_epoch(schedule):
    sampler = HybridSampler([10, 7, 5], [4, 2, 8], [1, 3, 1], schedule=schedule, seed=3)
    assert sampler.iters_per_source() == [3, 11, 1] and len(sampler) == 15
    for epoch in range(2):
        plan = sampler.epoch_plan(epoch)
        assert Counter(p.source for p in plan) == {0: 3, 1: 11, 2: 1}
        for s, (n, r) in enumerate([(10, 1), (7, 3), (5, 1)]):
            seen = np.concatenate([p.indices for p in plan if p.source == s])
            counts = np.bincount(seen, minlength=n)
            assert counts.min() >= r and counts.sum() == len(seen)  # every sample at least `repeat` times
            assert all(len(p.indices) == [4, 2, 8][s] for p in plan if p.source == s)
    assert [p.source for p in sampler.epoch_plan(0)] != [
        p.source for p in sampler.epoch_plan(1)
    ] or schedule == "each_once_interleaved"


def test_resume_mid_epoch_gives_the_same_order():
    a = HybridSampler([10, 7], [4, 2], seed=1)
    full = [(s.epoch, s.position, s.source, s.indices.tolist()) for s in itertools.islice(iter(a), 25)]
    b = HybridSampler([10, 7], [4, 2], seed=1)
    it = iter(b)
    first = [next(it) for _ in range(9)]
    state = b.state_dict()
    c = HybridSampler([10, 7], [4, 2], seed=1)
    c.load_state_dict(state)
    rest = list(itertools.islice(iter(c), 16))
    got = [(s.epoch, s.position, s.source, s.indices.tolist()) for s in first + rest]
    assert got == full
    with pytest.raises(ValueError, match="change the data order"):
        HybridSampler([11, 7], [4, 2]).load_state_dict(state)


def test_rank_share_and_micro_batches():
    idx = np.arange(8)
    assert [m.tolist() for m in rank_share(idx, 1, 2, micro_batch=2)] == [[4, 5], [6, 7]]
    with pytest.raises(ValueError, match="divisible"):
        rank_share(idx, 0, 3)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_checkpoint_round_trip_and_crash_during_write_keeps_the_old_one(tmp_path, monkeypatch):
    model = ToyModel(seed=1)
    save_checkpoint(tmp_path, "step_00000001", model, {"step": 1, "t": torch.ones(2)})
    other = ToyModel(seed=2)
    state = load_checkpoint(find_latest(tmp_path), other)
    assert state["step"] == 1 and torch.equal(state["t"], torch.ones(2))
    assert all(torch.equal(a, b) for a, b in zip(_weights(model).values(), _weights(other).values(), strict=True))

    def crash(*a, **k):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(ckpt_mod.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "step_00000002", ToyModel(seed=3), {"step": 2})
    assert find_latest(tmp_path).name == "step_00000001"  # the pointer never moved
    with pytest.raises(DataError, match="never finished"):
        load_checkpoint(tmp_path / "step_00000002")
    assert not list(tmp_path.rglob("*.tmp"))  # temp files cleaned up
    assert load_checkpoint(find_latest(tmp_path))["step"] == 1


def test_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path, "step_00000001", ToyModel(), {"step": 1})
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])
    with pytest.raises(DataError, match="truncated"):
        load_checkpoint(path, ToyModel())
    path = save_checkpoint(tmp_path, "step_00000002", ToyModel(), {"step": 2})
    raw = bytearray((path / "train_state.pt").read_bytes())
    raw[-40] ^= 0xFF
    (path / "train_state.pt").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="checksum"):
        load_checkpoint(path)


def test_set_overrides_are_type_checked():
    cfg = toy_config()
    new = apply_overrides(
        cfg,
        [
            "optim.lr=3e-4",
            "data.det.batch_size=6",
            "optim.betas=0.8,0.9",
            "amp=true",
            "data.pairs.size=(8, 8)",
            "early_stop.t1=3",
            "schedule.kind=auto_step",
        ],
    )
    assert new.optim.lr == 3e-4 and new.source("det").batch_size == 6 and new.optim.betas == (0.8, 0.9)
    assert new.amp is True and new.source("pairs").size == (8, 8) and new.early_stop.t1 == 3
    assert cfg.optim.lr == 1e-2  # frozen original untouched
    for bad, msg in [
        ("optim.lr=fast", "not a valid float"),
        ("optim.nope=1", "unknown key 'nope'"),
        ("data.coco.batch_size=1", "unknown data source 'coco'"),
        ("amp=maybe", "boolean"),
        ("schedule.kind=linear", "not one of"),
        ("data.det.batch_size=0", "must be positive"),
        ("optim.betas=0.9", "expected 2 values"),
        ("optim.lr", "key=value"),
        ("data.det.kind=video", "not one of"),
    ]:
        with pytest.raises(ValueError, match=msg):
            apply_overrides(cfg, [bad])
