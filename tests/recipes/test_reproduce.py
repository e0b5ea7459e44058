"""`detclip-bench reproduce` end to end on a small mini world with smoke-sized schedules.

The trained checkpoints must be loadable by `detclip-bench eval --model`, and scoring them there
must give exactly the numbers the reproduction wrote into its table.
"""

import json

import pytest

from detclip_bench.cli.main import main
from detclip_bench.mini_world import generate

MEMBERS = ["Aquarium", "pothole"]


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate(root, scale=0.15, seed=0, progress=False)
    out = tmp_path_factory.mktemp("repro")
    args = ["reproduce", "--scale", "mini", "--data-root", str(root), "--out", str(out), "--set",
            "schedule.max_steps=2", "--set", "schedule.epochs=1", "--members", *MEMBERS, "--no-plots"]
    assert main(args) == 0
    return root, out, args


def test_table_has_paper_rows_with_ours_beneath(reproduction):
    _, out, _ = reproduction
    table = json.loads((out / "claims-mini.json").read_text())
    labels = [row[0] for row in table["rows"]]
    assert labels[:2] == ["O365", "+CC3M"]  # the paper's rows, in the paper's order
    assert "↳ ours (mini)" in labels  # O365+GoldG+CC3M found its paper row
    runs = {r["run"]: r for r in table["runs"]}
    assert set(runs) == {"random-init", "o365-goldg", "o365-goldg-cc3m"}
    assert runs["random-init"]["pretrain_data"] == "none (random init)"
    ft = runs["o365-goldg-cc3m"]["fine-tuned mini-odinw13-finetune"]
    assert sorted(ft["per_dataset"]) == ["odinw13/Aquarium", "odinw13/pothole"]
    assert ft["metrics"]["AP"] == pytest.approx(sum(v["AP"] for v in ft["per_dataset"].values()) / 2)
    results = sorted(p.name for p in (out / "results").glob("*.json"))
    assert len(results) == 4  # random init + two zero-shot rows + one fine-tuned row
    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    mini_lvis = [r for sec in board["sections"] if sec["kind"] == "toolkit-mini" for r in sec["rows"]
                 if r["suite"] == "mini-lvis"]
    assert sorted(r["pretrain_data"] for r in mini_lvis) == ["O365+GoldG", "O365+GoldG+CC3M", "none (random init)"]


def test_checkpoints_load_in_eval_and_give_the_same_numbers(reproduction, tmp_path):
    root, out, _ = reproduction
    table = json.loads((out / "claims-mini.json").read_text())
    expected = next(r for r in table["runs"] if r["run"] == "o365-goldg")["zero-shot mini-lvis"]["metrics"]
    model = out / "pretrain" / "o365-goldg" / "model"
    assert (model / "model.safetensors").is_file() and (model / "config.json").is_file()
    assert main(["eval", "--model", str(model), "--suite", "mini-lvis", "--data-root", str(root),
                 "--out", str(tmp_path / "ev"), "--no-cache"]) == 0
    got = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert 100 * got["aggregate"]["metrics"]["AP"] == pytest.approx(expected["AP"], abs=1e-9)


def test_rerun_reuses_finished_runs(reproduction):
    _, out, args = reproduction
    metrics = out / "pretrain" / "o365-goldg" / "metrics.jsonl"
    before = metrics.stat().st_mtime_ns
    assert main(args) == 0
    assert metrics.stat().st_mtime_ns == before  # no retraining
