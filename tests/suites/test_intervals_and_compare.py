"""Intervals beside every AP in a suite run, and `compare` on two runs, checked against the bootstrap itself.

Runs are evaluations of the small mini world by detectors that perturb its ground truth (a different noise
seed per "model"), on mini-lvis (one member, Fixed AP) and mini-odinw13 (13 members, averaged).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from detclip_bench.cli.main import main
from detclip_bench.compare import AVERAGE, compare_runs
from detclip_bench.errors import DataError
from detclip_bench.metrics.bootstrap import bootstrap_ap, paired_bootstrap
from detclip_bench.metrics.factory import make_evaluator
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.metrics.intervals import bootstrap_pool, member_mean, pooled_delta
from detclip_bench.mini_world.vocabulary import category_groups
from detclip_bench.suites import get_suite
from detclip_bench.suites.runner import Bootstrap, evaluate_suite
from tests.suites.detectors import JitteredGtDetector

REPLICATES = 60


def NoisyDetector(targets, seed: int):
    """GT boxes jittered, scores random and one false box per image; ``seed`` is the model."""
    return JitteredGtDetector(targets, seed=seed, noise=0.15, false_box=True)


@pytest.fixture(scope="module")
def runs(small_world, tmp_path_factory):
    """suite -> [run folder per model seed 0, 1, 2], every run evaluated with a 60-resample bootstrap."""
    out = tmp_path_factory.mktemp("runs")
    folders = {}
    for name in ("mini-lvis", "mini-odinw13"):
        suite = get_suite(name)
        targets = suite.targets(small_world)
        folders[name] = []
        for seed in range(3):
            run_dir = out / f"{name}-{seed}"
            evaluate_suite(
                NoisyDetector(targets, seed),
                suite,
                small_world,
                out_dir=run_dir,
                progress=False,
                bootstrap=Bootstrap(REPLICATES, seed=7),
            )
            folders[name].append(run_dir)
    return folders


def _evaluator(root, suite_name: str, run_dir, member_index: int = 0):
    """The run's member re-scored by hand from its predictions (the oracle path)."""
    from detclip_bench.predict.arrays import PredictionArrays
    from detclip_bench.suites.runner import predictions_path

    suite = get_suite(suite_name)
    target = suite.targets(root)[member_index]
    protocol = suite.metrics[0]
    gt = GroundTruth.cached(target.annotations, lvis=protocol != "coco")
    budget = suite.evaluator_budget(protocol)
    ev = make_evaluator(
        gt, protocol, **budget, pool_per_category=bootstrap_pool(protocol, budget.get("topk_per_category"))
    )
    arrays, _ = PredictionArrays.load(predictions_path(run_dir, target))
    ev.update(arrays.image_ids, arrays.boxes, arrays.scores, arrays.category_ids)
    return ev, gt


def _results(run_dir) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_eval_writes_the_bootstrap_of_its_own_evaluation(runs, small_world):
    run_dir = runs["mini-lvis"][0]
    written = _results(run_dir)
    member = written["members"]["lvis-minival"]["lvis-fixed"]
    ev, _ = _evaluator(small_world, "mini-lvis", run_dir)
    oracle = bootstrap_ap(ev, n_replicates=REPLICATES, seed=7)  # member 0: seed + 0
    assert member["intervals"]["AP"]["interval"] == oracle["AP"]["interval"]
    assert member["intervals"]["APr"] == pytest.approx(oracle["APr"]) or oracle["APr"]["point"] < 0
    assert member["intervals"]["AP"]["point"] == member["metrics"]["AP"]  # the deeper pool scores the same
    assert 0 < member["intervals"]["AP"]["interval"][0] < member["metrics"]["AP"] < 1
    # a single-member suite's average is the member, interval included; the resampling is recorded
    assert written["aggregate"]["intervals"]["AP"] == member["intervals"]["AP"]
    assert written["bootstrap"] == {"replicates": REPLICATES, "seed": 7, "member_seeds": "seed + member index"}
    lo, hi = member["intervals"]["AP"]["interval"]
    assert f"[{100 * lo:.1f}, {100 * hi:.1f}]" in (run_dir / "results.md").read_text()
    assert f"[{100 * lo:.1f}, {100 * hi:.1f}]" in written["summary"]


def test_a_suite_average_pools_each_member_resampled_within_itself(runs, small_world):
    run_dir = runs["mini-odinw13"][0]
    written = _results(run_dir)
    suite = get_suite("mini-odinw13")
    replicates, points = [], []
    for i in range(len(suite.members)):
        ev, _ = _evaluator(small_world, "mini-odinw13", run_dir, i)
        entry = bootstrap_ap(ev, n_replicates=REPLICATES, seed=7 + i, return_replicates=True)["AP"]
        replicates.append(entry["replicates"])
        points.append(entry["point"])
        member = suite.members[i].name
        assert written["members"][member]["coco"]["intervals"]["AP"]["interval"] == entry["interval"]
    expected = member_mean(replicates)
    got = written["aggregate"]["intervals"]["AP"]
    assert got["interval"] == expected["interval"] and got["point"] == pytest.approx(np.mean(points))
    # independent members: the average's interval is narrower than a typical member's
    widths = [np.diff(written["members"][m.name]["coco"]["intervals"]["AP"]["interval"])[0] for m in suite.members]
    assert np.diff(got["interval"])[0] < np.median(widths)
    assert "| **average** |" in (run_dir / "results.md").read_text()


def test_intervals_leave_results_byte_identical_between_runs(runs, small_world, tmp_path):
    suite = get_suite("mini-lvis")
    again = tmp_path / "again"
    evaluate_suite(
        NoisyDetector(suite.targets(small_world), 0),
        suite,
        small_world,
        out_dir=again,
        progress=False,
        bootstrap=Bootstrap(REPLICATES, seed=7),
    )
    assert (again / "results.json").read_bytes() == (runs["mini-lvis"][0] / "results.json").read_bytes()


def test_compare_two_runs_is_the_paired_bootstrap(runs, small_world):
    a, b = runs["mini-lvis"][:2]
    cmp = compare_runs([[a], [b]], data_root=small_world, n_replicates=REPLICATES, seed=3)
    ev_a, gt = _evaluator(small_world, "mini-lvis", a)
    ev_b, _ = _evaluator(small_world, "mini-lvis", b)
    groups = category_groups(small_world, gt.category_names)
    assert set(groups) == {"caption", "detection", "grounding"}
    oracle = paired_bootstrap(ev_a, ev_b, n_replicates=REPLICATES, seed=3, groups=groups)
    cells = cmp.rows[b.name]["lvis-minival"]["lvis-fixed"]
    for key in ("AP", "AP50", "APf", "AP[caption]"):
        assert cells[key]["delta"] == pytest.approx(oracle[key]["delta"], abs=1e-12)
        assert cells[key]["interval"] == pytest.approx(oracle[key]["interval"], abs=1e-12)
        assert cells[key]["share_le_0"] == oracle[key]["share_le_0"]
    assert cells["AP"]["seed_sd"] is None and cells["AP"]["dominant"] is None


def test_compare_arms_of_several_seeds_pool_seeds_and_images(runs, small_world):
    a0, a1, b = runs["mini-lvis"]
    cmp = compare_runs([[a0, a1], [b]], data_root=small_world, n_replicates=REPLICATES, seed=3)
    reps = []
    for run in (a0, a1, b):
        ev, _ = _evaluator(small_world, "mini-lvis", run)
        reps.append(bootstrap_ap(ev, n_replicates=REPLICATES, seed=3, return_replicates=True)["AP"])
    oracle = pooled_delta(
        np.stack([reps[0]["replicates"], reps[1]["replicates"]]),
        reps[2]["replicates"][None],
        [reps[0]["point"], reps[1]["point"]],
        [reps[2]["point"]],
        seed=4,
    )
    cell = cmp.rows[b.name]["lvis-minival"]["lvis-fixed"]["AP"]
    assert cell["interval"] == pytest.approx(oracle["interval"], abs=1e-12)
    assert cell["point_a"] == pytest.approx((reps[0]["point"] + reps[1]["point"]) / 2)
    assert cell["seed_sd"] is not None and cell["dominant"] in ("seeds", "images")
    with pytest.raises(ValueError, match="paired seeds need as many runs"):
        compare_runs([[a0, a1], [b]], data_root=small_world, n_replicates=5, paired_seeds=True)


def test_compare_odinw_gives_every_member_and_the_average(runs, small_world):
    a, b = runs["mini-odinw13"][:2]
    cmp = compare_runs([[a], [b]], data_root=small_world, n_replicates=REPLICATES, seed=0)
    rows = cmp.rows[b.name]
    suite = get_suite("mini-odinw13")
    assert list(rows) == [m.name for m in suite.members] + [AVERAGE]
    per_member = [rows[m.name]["coco"]["AP"]["delta"] for m in suite.members]
    assert rows[AVERAGE]["coco"]["AP"]["delta"] == pytest.approx(np.mean(per_member))
    # the average's replicate r is the mean of each member's replicate r, each drawn with seed + index
    ra, rb = [], []
    for i in range(len(suite.members)):
        for run, acc in ((a, ra), (b, rb)):
            ev, _ = _evaluator(small_world, "mini-odinw13", run, i)
            acc.append(bootstrap_ap(ev, n_replicates=REPLICATES, seed=i, return_replicates=True)["AP"]["replicates"])
    delta = np.mean(rb, axis=0) - np.mean(ra, axis=0)
    assert rows[AVERAGE]["coco"]["AP"]["interval"] == pytest.approx(list(np.percentile(delta, [2.5, 97.5])))


def test_compare_cli_writes_json_markdown_and_plot(runs, small_world, tmp_path, capsys):
    a, b = runs["mini-odinw13"][:2]
    out = tmp_path / "cmp"
    argv = ["compare", str(a), str(b), "--data-root", str(small_world), "--bootstrap", "20", "--out", str(out)]
    assert main(argv) == 0
    written = json.loads((out / "compare.json").read_text())
    assert written["suite"] == "mini-odinw13" and written["bootstrap"]["replicates"] == 20
    assert AVERAGE in written["deltas"][b.name]
    assert "| AP |" in (out / "compare.md").read_text()
    assert (out / "compare.png").stat().st_size > 10_000
    # never overwrites a comparison; a mismatched suite is refused with the file named
    assert main(argv) == 2
    assert "already holds files" in capsys.readouterr().err
    lvis = runs["mini-lvis"][0]
    with pytest.raises(DataError, match="same suite"):
        compare_runs([[a], [lvis]], data_root=small_world, n_replicates=5)


def test_eval_bootstrap_option_defaults_on_and_zero_turns_it_off():
    from detclip_bench.cli.main import build_parser
    from detclip_bench.cli.options import bootstrap_from_args
    from detclip_bench.suites.runner import DEFAULT_BOOTSTRAP

    parse = build_parser().parse_args
    args = parse(["eval", "--model", "m", "--suite", "mini-lvis"])
    assert bootstrap_from_args(args) == Bootstrap(DEFAULT_BOOTSTRAP, 0)
    assert bootstrap_from_args(parse(["eval", "--model", "m", "--suite", "mini-lvis", "--bootstrap", "0"])) is None
    assert parse(["score", "--gt", "g", "--pred", "p", "--protocol", "coco"]).bootstrap == 0
    with pytest.raises(SystemExit):
        parse(["eval", "--model", "m", "--suite", "mini-lvis", "--bootstrap", "-1"])


def test_leaderboard_rows_carry_the_runs_intervals(runs, tmp_path):
    from leaderboards.paper import load_paper_tables
    from leaderboards.render import write_leaderboard
    from leaderboards.results import load_results
    from leaderboards.suite_runs import add_suite_run

    lvis, odinw = runs["mini-lvis"][0], runs["mini-odinw13"][0]
    add_suite_run(lvis, "noisy-lvis", tmp_path / "results")
    add_suite_run(odinw, "noisy-odinw", tmp_path / "results")
    loaded = {(r.model, r.protocol): (p, r) for p, r in load_results(tmp_path / "results")}  # JSON round trip
    run = _results(lvis)
    for protocol in run["metrics"]:
        result = loaded["noisy-lvis", protocol][1]
        (member,) = run["members"].values()
        stored = member[protocol]["intervals"]
        assert set(result.intervals) == set(result.metrics)  # every number the row prints has its interval
        for key, (lo, hi) in result.intervals.items():
            assert (lo, hi) == pytest.approx([100 * v for v in stored[key]["interval"]], abs=1e-9)
        assert result.bootstrap == run["bootstrap"] and result.bootstrap["replicates"] == REPLICATES
    run = _results(odinw)
    _, result = loaded["noisy-odinw", "coco"]
    assert result.intervals["AP"] == pytest.approx([100 * v for v in run["aggregate"]["intervals"]["AP"]["interval"]])
    assert set(result.per_dataset_intervals) == set(run["members"]) == set(result.per_dataset)
    for member, pair in result.per_dataset_intervals.items():
        assert pair == pytest.approx([100 * v for v in run["members"][member]["coco"]["intervals"]["AP"]["interval"]])

    entries = [r.to_entry(str(p)) for p, r in loaded.values()]
    write_leaderboard(tmp_path / "lb", load_paper_tables(), entries, plots=False)
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| noisy-odinw "))
    lo, hi = result.intervals["AP"]
    assert f" [{lo:.1f}, {hi:.1f}] |" in row  # the average's cell shows its interval
    assert row.count(" [") == 1 + len(result.per_dataset)  # and every dataset's AP its own
    js = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    rows = [r for s in js["sections"] for r in s["rows"] if r["model"] == "noisy-odinw"]
    assert rows[0]["intervals"]["AP"] == pytest.approx([lo, hi])


def test_leaderboard_intervals_are_checked():
    from leaderboards.schema import Entry, Source

    src = Source("results", "r.json", "r", "all", "r.json")
    base = dict(
        table="ours", source=src, model="m", suite="mini-lvis", protocol="lvis-fixed", protocol_stated="x",
        setting="zero-shot", metrics={"AP": 40.0}, evaluated_by="ours", scale="mini",
    )  # fmt: skip
    Entry(**base, intervals={"AP": (38.0, 42.0)})
    with pytest.raises(ValueError, match="no value for"):
        Entry(**base, intervals={"APr": (1.0, 2.0)})
    with pytest.raises(ValueError, match="lo <= hi"):
        Entry(**base, intervals={"AP": (42.0, 38.0)})
    with pytest.raises(ValueError, match="prints no intervals"):
        Entry(**{**base, "evaluated_by": "paper", "suite": "lvis-minival", "scale": "full"}, intervals={"AP": (1, 2)})


def test_an_own_dataset_run_gets_its_own_leaderboard_section(runs, tmp_path):
    """A run of `eval --dataset` (results.json names its dataset) is neither a paper benchmark nor the mini world."""
    import shutil

    from leaderboards.paper import load_paper_tables
    from leaderboards.render import OWN_TITLE, write_leaderboard
    from leaderboards.suite_runs import results_from_run

    run_dir = tmp_path / "own"
    shutil.copytree(runs["mini-lvis"][0], run_dir)
    run = _results(run_dir)
    run.update(suite="dataset-widgets", dataset="widgets.v3i.coco")  # what dataset_suite's manifest records
    (run_dir / "results.json").write_text(json.dumps(run))
    results = results_from_run(run_dir, "noisy")
    assert {r.scale for r in results} == {"own"}
    write_leaderboard(tmp_path / "lb", load_paper_tables(), [r.to_entry("own.json") for r in results], plots=False)
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    own = md.split(f"## {OWN_TITLE}")[1].split("\n## ")[0]
    assert "| noisy |" in own and "Toolkit results (full scale)" not in md
