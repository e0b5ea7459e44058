"""`detclip-bench reproduce` end to end on a small mini world with smoke-sized schedules.

The trained checkpoints must be loadable by `detclip-bench eval --model`, and scoring them there
must give exactly the numbers the reproduction wrote into its table.
"""

import json

import pytest

from detclip_bench.cli.main import main
from detclip_bench.mini_world import generate


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate(root, scale=0.15, seed=0, progress=False)
    out = tmp_path_factory.mktemp("repro")
    args = [
        "reproduce",
        "--scale",
        "mini",
        "--data-root",
        str(root),
        "--out",
        str(out),
        "--set",
        "schedule.max_steps=2",
        "--set",
        "schedule.epochs=1",
        # the scale-0.15 world has 18 detection/grounding batches an epoch: fold one pair batch into each of 16
        "--set",
        "data.cc3m.steps_per_epoch=8",
        "--set",
        "data.cc12m.steps_per_epoch=8",
        "--train-seeds",
        "0",
        "--no-plots",
    ]
    assert main(args) == 0
    return root, out, args


def test_table_has_paper_rows_with_ours_beneath(reproduction):
    _, out, _ = reproduction
    table = json.loads((out / "claims-mini.json").read_text())
    labels = [row[0] for row in table["rows"]]
    assert labels[:2] == ["O365", "+CC3M"]  # the paper's rows, in the paper's order
    assert "↳ ours (mini)" in labels  # O365+GoldG+CC15M found its paper row
    runs = {r["run"]: r for r in table["runs"]}
    assert set(runs) == {"random-init", "o365-goldg-s0", "o365-goldg-cc-s0"}
    assert runs["random-init"]["pretrain_data"] == "none (random init)"
    assert {runs[k]["arm"] for k in ("o365-goldg-s0", "o365-goldg-cc-s0")} == {"without pairs", "with pairs"}
    for run in ("o365-goldg-s0", "o365-goldg-cc-s0"):  # both splits, with the concept groups
        assert set(runs[run]["zero-shot mini-lvis"]["groups"]) == {"caption", "grounding", "detection"}
        assert "zero-shot mini-lvis-val" in runs[run]
    results = sorted(p.name for p in (out / "results").glob("*.json"))
    # random init (mini-lvis: Fixed AP) + two arms × (mini-lvis: Fixed AP, mini-lvis-val: Fixed and standard AP)
    assert len(results) == 7 and sum(name.endswith("__lvis-standard.json") for name in results) == 2
    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    mini_lvis = [
        r
        for sec in board["sections"]
        if sec["kind"] == "toolkit-mini"
        for r in sec["rows"]
        if r["suite"] == "mini-lvis"
    ]
    assert sorted(r["pretrain_data"] for r in mini_lvis) == ["O365+GoldG", "O365+GoldG+CC15M", "none (random init)"]
    paired = json.loads((out / "claims-mini-paired.json").read_text())
    assert set(paired) == {"mini-lvis", "mini-lvis-val"}
    assert set(paired["mini-lvis"]["delta"]) == {"0", "mean", "sd"}
    # each Δ carries its paired image-bootstrap interval, and its point is the table's Δ
    ci = paired["mini-lvis"]["intervals"]
    assert ci["replicates"] == 1000 and ci["protocol"] == "lvis-fixed"
    for column in ("AP", "group:caption"):
        entry = ci["per_seed"]["0"][column]
        assert 100 * entry["delta"] == pytest.approx(paired["mini-lvis"]["delta"]["0"][column], abs=1e-9)
        assert entry["interval"][0] <= entry["interval"][1]
    # every arm carries its held-out alignment gauges and training facts; the with-pairs arm its λ-rule ratio
    for run in ("o365-goldg-s0", "o365-goldg-cc-s0"):
        facts = runs[run]["training"]
        assert facts["chance_top1"] == 1 / 16 and 0 <= facts["text_to_image_top1"] <= 1
        assert facts["heldout_pairs"] == 16 * (facts["heldout_pairs"] // 16) > 0
        assert abs(facts["cosine_gap"]) < 2
    assert runs["o365-goldg-cc-s0"]["training"]["grad_ratio_first_updates"] > 0
    assert "grad_ratio_first_updates" not in runs["o365-goldg-s0"]["training"]
    assert "Training facts and alignment gauges" in (out / "claims-mini-paired.md").read_text()


def test_checkpoints_load_in_eval_and_give_the_same_numbers(reproduction, tmp_path):
    root, out, _ = reproduction
    table = json.loads((out / "claims-mini.json").read_text())
    expected = next(r for r in table["runs"] if r["run"] == "o365-goldg-s0")["zero-shot mini-lvis"]["metrics"]
    model = out / "pretrain" / "o365-goldg-s0" / "model"
    assert (model / "model.safetensors").is_file() and (model / "config.json").is_file()
    assert (
        main(
            [
                "eval",
                "--model",
                str(model),
                "--suite",
                "mini-lvis",
                "--data-root",
                str(root),
                "--out",
                str(tmp_path / "ev"),
                "--no-cache",
            ]
        )
        == 0
    )
    got = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert 100 * got["aggregate"]["metrics"]["AP"] == pytest.approx(expected["AP"], abs=1e-9)


def test_rerun_reuses_finished_runs(reproduction):
    _, out, args = reproduction
    metrics = out / "pretrain" / "o365-goldg-s0" / "metrics.jsonl"
    before = metrics.stat().st_mtime_ns
    assert main(args) == 0
    assert metrics.stat().st_mtime_ns == before  # no retraining


def test_reproduce_and_leaderboard_rows_come_from_one_path(reproduction, tmp_path):
    """Filing the reproduction's own eval folder with `leaderboard --add-run` gives the rows reproduce filed."""
    from leaderboards.results import load_results

    _, out, _ = reproduction
    filed = {(r.suite, r.setting, r.protocol, r.checkpoint): r for _, r in load_results(out / "results")}
    run_dirs = sorted((out / "eval").glob("o365-goldg-s0-zero-shot-*"))
    assert run_dirs
    args = ["leaderboard", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "lb"), "--no-plots"]
    for run_dir in run_dirs:
        args += ["--add-run", str(run_dir)]
    assert main([*args, "--label", "DetCLIPv2-mini"]) == 0
    added = [r for _, r in load_results(tmp_path / "res")]
    assert sorted((r.suite, r.protocol) for r in added) == sorted(
        (r.suite, r.protocol) for r in filed.values() if r.checkpoint.endswith("o365-goldg-s0/model")
    )
    for row in added:
        ours = filed[(row.suite, row.setting, row.protocol, row.checkpoint)]
        for field in (
            "model_identity",
            "checkpoint_sha256",
            "suite_version",
            "scale",
            "metrics",
            "per_dataset",
            "evaluated_by",
            "git_hash",
            "date",
        ):
            assert getattr(row, field) == getattr(ours, field), field


def test_analyze_reads_the_main_jobs_own_output(reproduction, tmp_path):
    """The README main job's eval folders carry their predictions: `analyze` (whose reader is load_run) needs no
    prediction cache. The FiftyOne side of `analyze` on such a folder is tested in tests/analysis."""
    from detclip_bench.analysis.run_dir import load_run

    root, out, _ = reproduction
    run_dir = out / "eval" / "o365-goldg-s0-zero-shot-mini-lvis"
    (cache := tmp_path / "cache-moved").mkdir()
    (out / "cache").rename(cache / "cache")  # nobody else reads the cache
    try:
        loaded = load_run(run_dir, data_root=root)
    finally:
        (cache / "cache").rename(out / "cache")
    (member,) = loaded.members
    table = json.loads((out / "claims-mini.json").read_text())
    expected = next(r for r in table["runs"] if r["run"] == "o365-goldg-s0")["zero-shot mini-lvis"]["metrics"]
    assert len(member.predictions) > 0 and loaded.results["aggregate"]["metrics"]["AP"] * 100 == expected["AP"]
