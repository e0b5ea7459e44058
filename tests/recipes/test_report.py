"""The reproduction report is typed: rows per run, evaluations keyed by (setting, suite), numbers in percent.

``<experiment>.json`` holds its ``to_dict``: the same keys, in the same order, as the untyped dict it replaced
(end to end: tests/recipes/test_reproduce.py reads the files a real reproduction wrote)."""

from __future__ import annotations

import json

import pytest

from recipes.paired_report import paired_summary
from recipes.report import Evaluation, ReproductionReport, RunRow


def _report() -> ReproductionReport:
    floor = RunRow("random-init", "", "none (random init)", "DetCLIPv2-mini", {}, "mini", random_init=True)
    floor.add(Evaluation("zero-shot", "mini-lvis", {"AP": 0.5}, {"caption": 0.1}))
    arms = []
    for arm, seed, ap in (("without pairs", 0, 10.0), ("with pairs", 0, 12.5)):
        row = RunRow(f"{arm}-s{seed}", "", "O365", "DetCLIPv2-mini", {"steps": 2}, "mini", seed=seed, arm=arm)
        row.training = {"cosine_gap": 0.1}
        row.add(Evaluation("zero-shot", "mini-lvis", {"AP": ap, "APr": ap / 2}, {"caption": ap / 4}))
        row.add(Evaluation("fine-tuned", "mini-odinw13-finetune", {"AP": 30.0}, per_dataset={"a": {"AP": 30.0}}))
        arms.append(row)
    return ReproductionReport("claims-mini", "t", "mini", False, "", ["n"], [floor, *arms])


def test_the_report_writes_what_the_untyped_dict_did():
    written = json.dumps(_report().to_dict())
    untyped = {
        "experiment": "claims-mini",
        "title": "t",
        "scale": "mini",
        "measure_cost": False,
        "paper_table": "",
        "notes": ["n"],
        "runs": [
            {
                "run": "random-init",
                "row": "",
                "pretrain_data": "none (random init)",
                "model": "DetCLIPv2-mini",
                "cost": {},
                "config": "mini",
                "zero-shot mini-lvis": {"metrics": {"AP": 0.5}, "groups": {"caption": 0.1}},
            },
            *(
                {
                    "run": f"{arm}-s0",
                    "row": "",
                    "pretrain_data": "O365",
                    "model": "DetCLIPv2-mini",
                    "cost": {"steps": 2},
                    "config": "mini",
                    "seed": 0,
                    "arm": arm,
                    "training": {"cosine_gap": 0.1},
                    "zero-shot mini-lvis": {"metrics": {"AP": ap, "APr": ap / 2}, "groups": {"caption": ap / 4}},
                    "fine-tuned mini-odinw13-finetune": {
                        "metrics": {"AP": 30.0},
                        "groups": {},
                        "per_dataset": {"a": {"AP": 30.0}},
                    },
                }
                for arm, ap in (("without pairs", 10.0), ("with pairs", 12.5))
            ),
        ],
    }
    assert written == json.dumps(untyped)  # key order included


def test_evaluations_are_keyed_by_setting_and_suite_and_state_their_unit():
    _, without, _ = _report().runs
    assert set(without.evaluations) == {("zero-shot", "mini-lvis"), ("fine-tuned", "mini-odinw13-finetune")}
    assert [e.suite for e in without.zero_shot()] == ["mini-lvis"]
    assert without.evaluations[("zero-shot", "mini-lvis")].unit == "percent"
    with pytest.raises(ValueError, match="holds percent"):
        Evaluation("zero-shot", "mini-lvis", {"AP": 0.1}, unit="fraction")  # type: ignore[arg-type]
    # the paired summary reads only arms' zero-shot evaluations, in percent
    summary = paired_summary(_report())
    assert set(summary) == {"mini-lvis"}
    assert summary["mini-lvis"]["delta"]["0"] == {"AP": 2.5, "APr": 1.25, "group:caption": 0.625}


def test_the_paired_report_says_what_its_intervals_cover_with_one_seed_and_with_several():
    from recipes.paired_report import _dominance

    one_seed = {"mean": {"AP": {"dominant": None}, "group:caption": {"dominant": None}}}
    assert _dominance(one_seed) == (
        "One training seed: the intervals cover image resampling only, not another training run."
    )
    seeds = {"mean": {"AP": {"dominant": "seeds"}, "group:caption": {"dominant": "images"}}}
    assert _dominance(seeds).endswith(": AP seeds, caption-only AP images.")
