"""The 'paired' hybrid plan: adding a box-free source changes nothing for the box-supervised steps.

Two arms (detection only, detection + image-text) must see the same detection batches in the same
order with the same augmentation seeds, and every detection step must run at the same learning rate.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest

from reference_model.train.engine import Trainer
from reference_model.train.sampler import HybridSampler

from .toy import ToyModel, toy_collate, toy_config, toy_datasets


def _records(plan):
    return [(p.source, p.indices.tolist(), p.rng_key(), p.anchored) for p in plan]


def test_paired_plan_keeps_anchored_steps_when_a_box_free_source_is_added():
    alone = HybridSampler([40, 30], [8, 8], schedule="paired", names=["o365", "goldg"], seed=3)
    both = HybridSampler(
        [40, 30, 50], [8, 8, 10], schedule="paired", names=["o365", "goldg", "cc"], anchored=[True, True, False], seed=3
    )
    for epoch in (0, 1):
        plan = both.epoch_plan(epoch)
        assert _records(alone.epoch_plan(epoch)) == _records([p for p in plan if p.anchored])
        free = [p for p in plan if not p.anchored]
        assert len(free) == 5 and {p.source for p in free} == {2}
        # box-free steps are spread between anchored ones, never bunched at one end
        positions = [p.position for p in free]
        assert positions[0] > 0 and positions[-1] < len(plan) - 1
        assert np.all(np.diff(positions) >= 2)
    # other epochs and other seeds give other orders
    assert _records(alone.epoch_plan(0)) != _records(alone.epoch_plan(1))
    other = HybridSampler([40, 30], [8, 8], schedule="paired", names=["o365", "goldg"], seed=4)
    assert _records(other.epoch_plan(0)) != _records(alone.epoch_plan(0))


def test_steps_per_epoch_fixes_a_sources_iterations():
    s = HybridSampler([40, 50], [8, 10], schedule="paired", names=["det", "cc"], anchored=[True, False], steps=[0, 12])
    assert s.iters_per_source() == [5, 12] and s.anchored_steps_per_epoch() == 5 and len(s) == 17


def test_paired_needs_an_anchored_source():
    with pytest.raises(ValueError, match="anchored"):
        HybridSampler([10], [2], schedule="paired", names=["cc"], anchored=[False])


def _lrs_of_detection_steps(tmp_path, cfg, name):
    datasets = toy_datasets()[: len(cfg.data)]
    trainer = Trainer(cfg, ToyModel(seed=0), datasets, tmp_path / name, collate=toy_collate, progress=False)
    trainer.fit()
    lines = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    return [(r["position"], r["source"], r["lr"]) for r in lines], trainer


def test_detection_steps_run_at_identical_learning_rates_in_both_arms(tmp_path):
    with_pairs = dataclasses.replace(toy_config(epochs=2, det_batch=2, pair_batch=4), sampler="paired")
    without = dataclasses.replace(with_pairs, data=with_pairs.data[:1])
    a, trainer_a = _lrs_of_detection_steps(tmp_path, without, "a")
    b, trainer_b = _lrs_of_detection_steps(tmp_path, with_pairs, "b")
    det_a = [lr for _, src, lr in a if src == "det"]
    det_b = [lr for _, src, lr in b if src == "det"]
    assert len(det_a) == len(det_b) == 10 and det_a == det_b
    assert len(b) == 18  # 8 image-text steps were interleaved
    # the schedule really moves (warm-up then cosine) and runs over the detection steps only
    assert det_a[0]["image"] < det_a[3]["image"] > det_a[-1]["image"]
    assert trainer_a.schedule_steps == trainer_b.schedule_steps == 10
    # an image-text step uses the LR of the detection step that follows it
    for (pos, src, lr), (_, nxt_src, nxt_lr) in itertools.pairwise(b):
        if src == "pairs" and nxt_src == "det":
            assert lr == nxt_lr, pos
