"""Mini experiments as paired, multi-seed ablations; ``--set`` checked against every run before any work."""

from __future__ import annotations

import pytest

from recipes import get_experiment
from recipes.mini_design import MINI_LAMBDA
from recipes.reproduce import plan_overrides


def test_mini_experiments_are_paired_and_claims_run_two_training_seeds():
    for table in ("claims", "4", "5"):
        assert all(run.config.sampler == "paired" for run in get_experiment(table, "mini").pretrain), table
    claims = get_experiment("claims", "mini")
    assert claims.seeds == (0, 1)
    assert {run.arm for run in claims.pretrain} == {"without pairs", "with pairs"}
    with_pairs = next(r for r in claims.pretrain if r.arm == "with pairs").config
    assert dict(with_pairs.model.overrides)["loss_contrastive"] == MINI_LAMBDA  # a stated mini departure (paper 0.1)
    assert all(run.config.box_free_update == "folded" for run in claims.pretrain)
    assert all(run.config.ema_decay > 0 for run in claims.pretrain)
    assert {d.name: d.size for d in with_pairs.data if d.kind.value == "image_text"} == {
        "cc3m": (128, 128),
        "cc12m": (128, 128),
    }


def test_with_seeds_repeats_every_run_and_evaluation_per_seed():
    exp = get_experiment("claims", "mini").with_seeds((0, 3))
    assert [r.key for r in exp.pretrain] == ["o365-goldg-s0", "o365-goldg-cc-s0", "o365-goldg-s3", "o365-goldg-cc-s3"]
    assert [r.config.seed for r in exp.pretrain] == [0, 0, 3, 3]
    assert {z.run for z in exp.zero_shot} == {r.key for r in exp.pretrain}
    assert len(exp.zero_shot) == 2 * len(get_experiment("claims", "mini").zero_shot)
    assert exp.seeds == ()  # applied once
    with pytest.raises(ValueError, match="distinct"):
        get_experiment("claims", "mini").with_seeds((1, 1))


def test_set_is_checked_up_front_and_applies_only_where_the_source_exists():
    exp = get_experiment("claims", "mini").with_seeds((0,))
    plan = plan_overrides(exp, ("data.cc3m.batch_size=8", "schedule.epochs=2"))
    assert plan["o365-goldg-cc-s0"] == ("data.cc3m.batch_size=8", "schedule.epochs=2")
    assert plan["o365-goldg-s0"] == ("schedule.epochs=2",)  # the no-pairs arm has no cc3m source
    with pytest.raises(ValueError, match="no run of claims-mini has that data source"):
        plan_overrides(exp, ("data.in1k.batch_size=8",))
    with pytest.raises(ValueError, match="not a valid int"):
        plan_overrides(exp, ("data.cc3m.batch_size=eight",))
    with pytest.raises(ValueError, match="unknown key"):
        plan_overrides(exp, ("schedule.epochz=2",))


def test_reproduce_rejects_a_bad_set_before_generating_anything(tmp_path, capsys):
    from detclip_bench.cli.main import main

    assert main(["reproduce", "--scale", "mini", "--out", str(tmp_path / "out"), "--set", "data.nope.size=1"]) == 2
    assert "no run of claims-mini has that data source" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_real_mini_control_is_the_arm_without_pairs_and_pairs_change_only_through_their_gradient(
    small_world, tmp_path
):
    """The claims' arms with the real mini model, data and collate: folded at λ = 0 the with-pairs arm is the
    arm without pairs bit for bit (weights, EMA, AdamW state); at λ > 0 it takes the same number of AdamW
    steps and differs."""
    import dataclasses

    import torch

    from recipes.experiment import with_model_overrides
    from reference_model.train.build import build_model, open_sources
    from reference_model.train.config import apply_overrides, with_data_root
    from reference_model.train.engine import Trainer

    claims = get_experiment("claims", "mini")
    few_pairs = ["data.cc3m.steps_per_epoch=2", "data.cc12m.steps_per_epoch=2"]  # the small world has few boxes

    def fit(key, name, steps, lam):
        cfg = claims.run(key).config
        cfg = apply_overrides(cfg, few_pairs if key.endswith("cc") else [])
        cfg = dataclasses.replace(
            cfg,
            model=with_model_overrides(cfg.model, loss_contrastive=lam),
            schedule=dataclasses.replace(cfg.schedule, epochs=1, max_steps=steps),
        )
        cfg = with_data_root(cfg, str(small_world))
        torch.manual_seed(0)
        trainer = Trainer(cfg, build_model(cfg), open_sources(cfg), tmp_path / name, progress=False)
        trainer.fit()
        plan = [p.anchored for p in trainer.sampler.epoch_plan(0)][:steps]
        return trainer, plan

    alone, plan_alone = fit("o365-goldg", "alone", 2, MINI_LAMBDA)
    control, plan = fit("o365-goldg-cc", "control", 3, 0.0)
    assert plan_alone == [True, True] and plan == [True, True, False]  # two detection steps, one image-text
    for model in ("model", "final_model"):
        pairs = zip(
            getattr(control, model).state_dict().values(), getattr(alone, model).state_dict().values(), strict=True
        )
        assert all(torch.equal(a, b) for a, b in pairs), model
    states = zip(
        control.optimizer.state_dict()["state"].values(), alone.optimizer.state_dict()["state"].values(), strict=True
    )
    assert all(
        torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"]) for a, b in states
    )
    treated, _ = fit("o365-goldg-cc", "treated", 3, 1.0)
    assert treated.optimizer_steps == control.optimizer_steps == alone.optimizer_steps == 2
    weights = zip(treated.model.state_dict().items(), alone.model.state_dict().items(), strict=True)
    changed = {name.split(".")[0] for (name, a), (_, b) in weights if not torch.equal(a, b)}
    assert {"backbone", "fpn", "head", "text_encoder"} <= changed
