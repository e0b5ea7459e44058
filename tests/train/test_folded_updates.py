"""Folded box-free updates: an ablation arm differs from its control by the box-free gradient alone.

In the paper's alternating loop an image-text step is its own AdamW step, so most of its update is the
detection momentum replayed, and an arm "with pairs" trains differently from the first such step even
at λ = 0. With ``box_free_update="folded"`` the image-text gradient is added to the detection step
before it and one optimizer step takes both: the λ = 0 control is then the arm without pairs bit for
bit, and the treatment's every update is AdamW on (detection gradient + λ · contrastive gradient).
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
import torch

from reference_model.train.engine import Trainer, gradient_split, lr_batch_size
from reference_model.train.optim import build_optimizer

from .toy import ToyModel, toy_collate, toy_config, toy_datasets


class WeightedToy(ToyModel):
    """The toy with the DetCLIPv2 hook: the image-text loss is scaled by ``lam`` (λ)."""

    def __init__(self, lam: float, **kw) -> None:
        super().__init__(**kw)
        self.lam = lam

    def loss_weight(self, kind) -> float:
        return self.lam if str(getattr(kind, "value", kind)) == "image_text" else 1.0

    def forward(self, batch):
        out = super().forward(batch)
        if batch.kind == "image_text":
            out["loss"] = self.lam * out["loss_contrastive"]
        return out


def _folded(**kw):
    cfg = toy_config(epochs=2, det_batch=2, pair_batch=4, **kw)
    return dataclasses.replace(cfg, sampler="paired", box_free_update="folded")


def _fit(tmp_path, name, cfg, lam):
    trainer = Trainer(
        cfg,
        WeightedToy(lam, seed=0),
        toy_datasets()[: len(cfg.data)],
        tmp_path / name,
        collate=toy_collate,
        progress=False,
    )
    trainer.fit()
    records = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    return trainer, records


def _adam_state(trainer):
    out = []
    for p in trainer.model.parameters():
        st = trainer.optimizer.state.get(p, {})
        out.append({k: v.clone() if torch.is_tensor(v) else v for k, v in st.items()})
    return out


def _same_state(a, b) -> bool:
    if len(a) != len(b):
        return False
    for sa, sb in zip(a, b, strict=True):
        if sa.keys() != sb.keys() or any(not torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return True


def test_zero_weight_control_is_the_arm_without_pairs_bit_for_bit(tmp_path):
    with_pairs = _folded()
    without = dataclasses.replace(with_pairs, data=with_pairs.data[:1])
    control, records = _fit(tmp_path, "control", with_pairs, lam=0.0)
    alone, _ = _fit(tmp_path, "alone", without, lam=0.0)
    for p, q in zip(control.model.parameters(), alone.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert _same_state(_adam_state(control), _adam_state(alone))  # the box-free steps never touched AdamW
    assert control.optimizer_steps == alone.optimizer_steps == 10
    skipped = [r for r in records if r["source"] == "pairs"]
    assert len(skipped) == 8 and all(r.get("forward_skipped") == 1.0 for r in skipped)


def test_treatment_takes_no_extra_optimizer_steps_and_starts_from_the_controls_state(tmp_path):
    cfg = _folded()
    control, _ = _fit(tmp_path, "control", cfg, lam=0.0)
    treated, records = _fit(tmp_path, "treated", cfg, lam=1.0)
    assert treated.optimizer_steps == control.optimizer_steps == 10  # AdamW's step counters agree
    steps = {n: int(treated.optimizer.state[p]["step"]) for n, p in treated.model.named_parameters()}
    # the shared tower moved once per detection step; the text tower (image-text only) once per pair batch:
    # AdamW never steps a parameter that got no gradient
    assert {s for n, s in steps.items() if not n.startswith("text_encoder")} == {10}
    assert {s for n, s in steps.items() if n.startswith("text_encoder")} == {8}
    # and the pairs did change the weights (the treatment is not a no-op)
    assert any(
        not torch.equal(p, q) for p, q in zip(treated.model.parameters(), control.model.parameters(), strict=True)
    )
    # the gradient split is measured on every folded step, for the λ rule
    folded = [r for r in records if r["source"] == "pairs"]
    assert all(r["grad_norm_box_free"] > 0 and r["grad_ratio"] > 0 for r in folded)


def test_a_folded_update_is_adamw_on_the_sum_of_both_gradients(tmp_path):
    """Two iterations (detection, then image-text) against a hand-written AdamW step on the summed gradient."""
    cfg = _folded()
    cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, max_steps=2))
    model = WeightedToy(0.7, seed=0, dropout=0.0)  # the trainer seeds dropout per step: compare without it
    datasets = toy_datasets()
    trainer = Trainer(cfg, model, datasets, tmp_path / "one", collate=toy_collate, progress=False)
    trainer.fit()
    records = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert trainer.optimizer_steps == 1 and [r["source"] for r in records] == ["det", "pairs"]

    plan = trainer.sampler.epoch_plan(0)
    det = toy_collate([datasets[0][i] for i in plan[0].indices], cfg.data[0], None, None)
    pairs = toy_collate([datasets[1][i] for i in plan[1].indices], cfg.data[1], None, None)
    ref = WeightedToy(0.7, seed=0, dropout=0.0)
    opt = build_optimizer(ref, cfg.optim, lr_batch_size(cfg))
    for group in opt.param_groups:
        group["lr"] = records[0]["lr"][group["name"]]
    ref(det)["loss"].backward()
    boxed = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in ref.parameters()]
    ref(pairs)["loss"].backward()
    opt.step()
    for p, q in zip(ref.parameters(), trainer.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-7)
    # the pair gradient reached the shared tower and the text tower, not the detection head
    names = [n for n, _ in ref.named_parameters()]
    contrib = [p.grad - b for p, b in zip(ref.parameters(), boxed, strict=True)]
    touched = {n.split(".")[0] for n, g in zip(names, contrib, strict=True) if g.abs().sum() > 0}
    assert touched == {"backbone", "norm", "text_encoder"}
    assert records[1]["grad_norm_box_free"] == pytest.approx(
        float(torch.sqrt(sum((g.double() ** 2).sum() for g in contrib))), rel=1e-6
    )


def test_folded_needs_the_paired_plan():
    with pytest.raises(ValueError, match="paired"):
        dataclasses.replace(toy_config(), box_free_update="folded")


def test_gradient_split_by_hand():
    before = [torch.tensor([3.0, 0.0]), None]
    after = [torch.tensor([3.0, 4.0]), torch.tensor([0.0])]
    split = gradient_split(before, after)
    assert split["grad_norm_boxed"] == 3.0 and split["grad_norm_box_free"] == 4.0
    assert split["grad_ratio"] == pytest.approx(4 / 3) and split["grad_cosine"] == 0.0


def test_ema_is_the_final_model_and_survives_a_checkpoint(tmp_path):
    cfg = dataclasses.replace(_folded(), ema_decay=0.9)
    trainer, _ = _fit(tmp_path, "ema", cfg, lam=1.0)
    ema = trainer.final_model
    assert ema is not trainer.model
    assert any(not torch.equal(p, q) for p, q in zip(ema.parameters(), trainer.model.parameters(), strict=True))
    again = Trainer(
        cfg, WeightedToy(1.0, seed=1), toy_datasets(), tmp_path / "ema", collate=toy_collate, progress=False
    )
    assert again.resume()
    for p, q in zip(again.final_model.parameters(), ema.parameters(), strict=True):
        assert torch.equal(p, q)
    assert again.optimizer_steps == trainer.optimizer_steps == 10


def test_no_checkpoint_while_a_folded_update_waits_and_resume_is_exact(tmp_path):
    """ckpt_every=1 asks for a checkpoint after every iteration; the ones between a detection batch and its
    image-text half are skipped, so a resumed run never loses half an update."""
    cfg = dataclasses.replace(_folded(), ckpt_every=1, keep_ckpts=0)
    trainer, records = _fit(tmp_path, "ckpt", cfg, lam=1.0)
    saved = sorted(int(p.name.removeprefix("step_")) for p in (tmp_path / "ckpt" / "checkpoints").glob("step_*"))
    kinds = {r["step"]: r["source"] for r in records}
    waiting = {s for s, src in kinds.items() if src == "det" and kinds.get(s + 1) == "pairs"}
    assert saved and not set(saved) & waiting
    assert set(saved) | waiting == set(kinds)
    # resume from a checkpoint in the middle and finish: the same weights as the uninterrupted run
    middle = saved[len(saved) // 2]
    resumed = Trainer(
        cfg, WeightedToy(1.0, seed=0), toy_datasets(), tmp_path / "ckpt2", collate=toy_collate, progress=False
    )
    import shutil

    shutil.copytree(tmp_path / "ckpt" / "checkpoints" / f"step_{middle:08d}", tmp_path / "mid")
    assert resumed.resume(tmp_path / "mid")
    resumed.fit()
    for p, q in zip(resumed.model.parameters(), trainer.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_folded_plans_cap_box_free_steps_at_the_anchored_count():
    """A world with one boxed batch fewer than the pair steps configured still folds every pair batch."""
    from reference_model.train.sampler import HybridSampler

    def plan(cap):
        return HybridSampler(
            [896, 40, 40],
            [8, 16, 16],
            schedule="paired",
            names=["det", "cc3m", "cc12m"],
            anchored=[True, False, False],
            steps=[0, 57, 56],
            cap_box_free=cap,
        )

    assert plan(False).iters_per_source() == [112, 57, 56] and not plan(False).capped
    capped = plan(True)
    assert capped.capped and capped.iters_per_source() == [112, 56, 56]
    steps = capped.epoch_plan(0)
    assert all(a.anchored for a, b in itertools.pairwise(steps) if not b.anchored)  # each pair batch follows a box one
    roomy = HybridSampler(
        [904, 40],
        [8, 16],
        schedule="paired",
        names=["det", "cc"],
        anchored=[True, False],
        steps=[0, 113],
        cap_box_free=True,
    )
    assert roomy.iters_per_source() == [113, 113] and not roomy.capped  # nothing to cap: the plan is untouched
