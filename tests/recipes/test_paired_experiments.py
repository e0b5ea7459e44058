"""Mini experiments as paired, multi-seed ablations; ``--set`` checked against every run before any work."""

from __future__ import annotations

import pytest

from recipes import get_experiment
from recipes.reproduce import plan_overrides


def test_mini_experiments_are_paired_and_claims_run_two_training_seeds():
    for table in ("claims", "4", "5"):
        assert all(run.config.sampler == "paired" for run in get_experiment(table, "mini").pretrain), table
    claims = get_experiment("claims", "mini")
    assert claims.seeds == (0, 1)
    assert {run.arm for run in claims.pretrain} == {"without pairs", "with pairs"}
    with_pairs = next(r for r in claims.pretrain if r.arm == "with pairs").config
    assert dict(with_pairs.model.overrides)["loss_contrastive"] == 1.0  # a stated mini departure (paper: 0.1)
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
