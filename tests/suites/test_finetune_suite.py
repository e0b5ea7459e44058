"""The suite's fine-tuning protocol with a model family plugged in as a MemberTrainer.

A toy family "trains" by choosing among a few fixed detectors (each a different amount of box jitter around
the ground truth) with the suite's ``evaluate_val``. The protocol must pick the best on val, score the
selected one on the eval split, and write the same run folder a zero-shot evaluation writes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from detclip_bench.adapters.base import Prediction
from detclip_bench.analysis.run_dir import load_run
from detclip_bench.suites import get_suite
from detclip_bench.suites.finetune_protocol import TrainedMember, finetune_suite
from detclip_bench.suites.runner import evaluate_suite
from detclip_bench.suites.suite import member_file_stem
from leaderboards.suite_runs import results_from_run

MEMBERS = ["Aquarium", "pothole"]


class JitterDetector:
    """Ground-truth boxes jittered by ``jitter`` × box size, found by pixel hash (any split it was shown)."""

    def __init__(self, suite, root, jitter: float):
        self.jitter, self.name = jitter, f"jitter-{jitter}"
        self.table = {}
        for member in suite.members:
            for split in member.files:
                ds = member.target(root, split).open()
                index = {c.category_id: k for k, c in enumerate(ds.vocabulary())}
                for i in range(len(ds)):
                    s = ds[i]
                    rng = np.random.default_rng([int(s.record_id), int(1000 * jitter)])
                    size = np.concatenate([s.boxes[:, 2:] - s.boxes[:, :2]] * 2, axis=1)
                    boxes = (s.boxes + rng.normal(0, jitter, s.boxes.shape) * size).astype(np.float32)
                    labels = np.array([index[c.category_id] for c in s.box_concepts], np.int64)
                    key = hashlib.sha256(s.load_image().tobytes()).hexdigest()
                    self.table[key] = (boxes, rng.uniform(0.2, 1, len(boxes)).astype(np.float32), labels)

    def identity(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        return [Prediction(*self.table[hashlib.sha256(im.tobytes()).hexdigest()]) for im in images]


class ChooseOnVal:
    """A MemberTrainer: 'epoch' k is detector k; keeps the best on val, as the ODinW protocol does."""

    def __init__(self, candidates):
        self.candidates, self.val_aps, self.calls = candidates, {}, []

    def __call__(self, suite, member, train, out_dir, *, evaluate_val):
        assert train.split == "train" and train.member == member
        self.calls.append(member)
        aps = [evaluate_val(d) for d in self.candidates]
        self.val_aps[member] = aps
        best = int(np.argmax(aps))
        return TrainedMember(self.candidates[best], None, {"best_val_ap": aps[best], "best_epoch": best})


@pytest.fixture(scope="module")
def world(small_world):
    return small_world


def test_finetune_writes_the_same_run_folder_as_eval(world, tmp_path):
    suite = get_suite("mini-odinw13-finetune")
    candidates = [JitterDetector(suite, world, j) for j in (0.3, 0.02, 0.15)]
    trainer = ChooseOnVal(candidates)
    out = tmp_path / "ft"
    result = finetune_suite(
        trainer, suite, world, out, model="toy-start", members=MEMBERS, batch_size=3, progress=False
    )
    assert [m.split("/")[-1] for m in trainer.calls] == MEMBERS
    for member, aps in trainer.val_aps.items():
        assert int(np.argmax(aps)) == 1  # the least jitter wins on val
        assert result.finetune[member]["best_val_ap"] == max(aps)
    # each member's reported number is the selected detector on the eval split, as a zero-shot run scores it
    chosen = [m for m in suite.members if m.name.split("/")[-1] in MEMBERS]
    plain = evaluate_suite(
        candidates[1], type(suite)(**{**suite.__dict__, "members": tuple(chosen)}), world, batch_size=3, progress=False
    )
    for member in result.members:
        assert result.members[member]["coco"].metrics == plain.members[member]["coco"].metrics
        assert result.splits[member] == "test"
        assert (out / "predictions" / f"{member_file_stem(member)}-test.npz").is_file()
    aps = [r["coco"].metrics["AP"] for r in result.members.values()]
    assert result.aggregate()["AP"] == pytest.approx(sum(aps) / len(aps), abs=1e-12)
    # one results path: the leaderboard row and analyze read this folder like any other
    (row,) = results_from_run(out)
    assert row.setting == "fine-tuned" and row.suite == "mini-odinw13-finetune" and row.checkpoint == "toy-start"
    assert set(row.per_dataset) == set(result.members)
    loaded = load_run(out, data_root=world)
    assert [m.split for m in loaded.members] == ["test", "test"]


def test_a_member_that_is_not_in_the_suite_is_refused(world, tmp_path):
    suite = get_suite("mini-odinw13-finetune")
    with pytest.raises(ValueError, match="no member of mini-odinw13-finetune matches"):
        finetune_suite(ChooseOnVal([]), suite, world, tmp_path, model="x", members=["NoSuchSet"])


def test_fixed_schedule_without_val_writes_readable_results(world, tmp_path):
    """A member trained on a fixed schedule has no best val AP: results.json gets null, never NaN."""
    import json
    import math

    suite = get_suite("mini-odinw13-finetune")
    detector = JitterDetector(suite, world, 0.02)

    def fixed_schedule(suite, member, train, out_dir, *, evaluate_val):
        return TrainedMember(detector, None, {"best_val_ap": math.nan, "best_epoch": 2, "epochs_run": 3})

    out = tmp_path / "ft"
    finetune_suite(fixed_schedule, suite, world, out, model="toy", members=MEMBERS[:1], batch_size=3, progress=False)
    facts = next(iter(json.loads((out / "results.json").read_text(), parse_constant=_reject)["finetune"].values()))
    assert facts["best_val_ap"] is None and facts["epochs_run"] == 3
    load_run(out, data_root=world)  # the readers take it


def _reject(token):
    raise ValueError(f"non-JSON constant {token} in results.json")
