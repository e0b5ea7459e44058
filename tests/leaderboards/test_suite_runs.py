"""Suite runs → leaderboard rows: a peer (tiny OWLv2 via ``hf:``) beside a DetCLIPv2 checkpoint.

Both are real ``evaluate_suite`` runs on a generated mini world, filed with ``add_suite_run`` and
rendered; the rows must carry the numbers of results.json (as percent) and say how they were made.
"""

from __future__ import annotations

import json

import pytest
import torch

from detclip_bench.adapters.models import load_detector
from detclip_bench.cli.main import main
from detclip_bench.errors import DataError
from detclip_bench.mini_world import generate
from detclip_bench.suites import get_suite
from detclip_bench.suites.runner import evaluate_suite
from leaderboards.paper import load_paper_tables
from leaderboards.render import MINI_TITLE, write_leaderboard
from leaderboards.results import load_results
from leaderboards.suite_runs import add_suite_run, results_from_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """results.json of a peer and of a DetCLIPv2 checkpoint on mini-odinw13, and the peer on mini-lvis-val."""
    from reference_model.detclipv2 import DetCLIPv2
    from tests.adapters.tiny_models import save_owl
    from tests.reference_model.conftest import tiny_config

    tmp = tmp_path_factory.mktemp("suite_runs")
    world = tmp / "world"
    generate(world, scale=0.02, seed=0, progress=False)
    torch.manual_seed(0)
    DetCLIPv2(tiny_config()).save_pretrained(tmp / "ckpt")
    peer = load_detector(f"hf:{save_owl(tmp / 'owlv2')}")
    ours = load_detector(str(tmp / "ckpt"))
    out = {}
    for key, det, suite in (
        ("peer", peer, "mini-odinw13"),
        ("ours", ours, "mini-odinw13"),
        ("lvis", peer, "mini-lvis-val"),
    ):
        evaluate_suite(det, get_suite(suite), world, out_dir=tmp / key, batch_size=2, progress=False)
        out[key] = tmp / key
    return out


def _run(path):
    return {**json.loads((path / "run_info.json").read_text()), **json.loads((path / "results.json").read_text())}


def test_peer_and_ours_results_carry_the_run(runs, tmp_path):
    paths = add_suite_run(runs["peer"], "OWLv2-tiny", tmp_path) + add_suite_run(
        runs["ours"], "detclipv2-tiny", tmp_path
    )
    assert len(paths) == 2
    by_model = {r.model: r for _, r in load_results(tmp_path)}
    for label, key, by in (("OWLv2-tiny", "peer", "peer-adapter"), ("detclipv2-tiny", "ours", "ours")):
        run, result = _run(runs[key]), by_model[label]
        assert result.evaluated_by == by and result.checkpoint == run["model"]
        assert (result.suite, result.suite_version, result.protocol) == ("mini-odinw13", run["version"], "coco")
        assert (result.setting, result.scale, result.date) == ("zero-shot", "mini", run["date"])
        assert result.model_identity == run["model_identity"]
        assert result.metrics["AP"] == pytest.approx(100 * run["aggregate"]["metrics"]["AP"], abs=1e-3)
        assert list(result.per_dataset) == list(run["members"])
        for member, row in result.per_dataset.items():
            assert row["AP"] == pytest.approx(100 * run["members"][member]["coco"]["metrics"]["AP"], abs=1e-3)
    assert by_model["OWLv2-tiny"].checkpoint.startswith("hf:")
    assert len(by_model["OWLv2-tiny"].checkpoint_sha256) == 64  # the adapter identity is a full sha256
    assert by_model["detclipv2-tiny"].checkpoint_sha256 == ""  # DetCLIPv2's 16-digit identity is kept apart


def test_lvis_run_gives_one_result_per_protocol(runs):
    run = _run(runs["lvis"])
    results = results_from_run(runs["lvis"])
    assert [r.protocol for r in results] == run["metrics"] == ["lvis-fixed", "lvis-standard"]
    for r in results:
        expected = run["members"]["lvis-val"][r.protocol]["metrics"]
        assert r.per_dataset == {} and r.model == run["model"]  # no label: the spec names the row
        assert set(r.metrics) == {k for k in ("AP", "APr", "APc", "APf") if expected[k] >= 0}  # -1 = undefined, dropped
        for k, v in r.metrics.items():
            assert v == pytest.approx(100 * expected[k], abs=1e-3)


def test_rendered_rows_say_how_they_were_evaluated(runs, tmp_path):
    add_suite_run(runs["peer"], "OWLv2-tiny", tmp_path / "results")
    add_suite_run(runs["ours"], "detclipv2-tiny", tmp_path / "results")
    entries = [r.to_entry(str(p)) for p, r in load_results(tmp_path / "results")]
    write_leaderboard(tmp_path / "lb", load_paper_tables(), entries, plots=False)
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    section = md.split(f"## {MINI_TITLE}: mini-odinw13")[1].split("\n## ")[0]
    rows = {ln.split("|")[1].strip(): ln for ln in section.splitlines() if ln.startswith("| ") and "Model" not in ln}
    assert set(rows) == {"OWLv2-tiny", "detclipv2-tiny"}  # the peer sits beside DetCLIPv2
    spec = _run(runs["peer"])["model"]
    assert (
        f"**peer via adapter**: evaluated by detclip-bench, --model `{spec}`, coco (suite mini-odinw13 v1.0)"
        in rows["OWLv2-tiny"]
    )
    assert (
        f"**ours (this toolkit)**: evaluated by detclip-bench, --model `{_run(runs['ours'])['model']}`"
        in rows["detclipv2-tiny"]
    )
    assert "How evaluated" in section
    t7 = md.split("## Appendix Table 7")[1].split("\n## ")[0]
    assert "| paper-reported (Appendix Table 7) |" in t7


def test_cli_adds_a_run_and_renders(runs, tmp_path, capsys):
    argv = [
        "leaderboard",
        "--add-run",
        str(runs["peer"]),
        "--label",
        "OWLv2-tiny",
        "--results",
        str(tmp_path / "r"),
        "--out",
        str(tmp_path / "lb"),
        "--suite",
        "odinw13",
        "--no-plots",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "added " in out and "1 toolkit results (1 mini-world)" in out
    assert "OWLv2-tiny" in (tmp_path / "lb" / "leaderboard.md").read_text()


def test_bad_runs_are_clear_errors(runs, tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"model": "x"}))
    with pytest.raises(DataError, match="not a suite run"):
        results_from_run(tmp_path, "x")
    run = _run(runs["peer"])
    run["aggregate"]["metrics"]["AP"] += 0.01  # an Avg that is not the mean of its members
    (tmp_path / "results.json").write_text(json.dumps(run))
    with pytest.raises(DataError, match="!= mean of members"):
        results_from_run(tmp_path, "x")
    run = _run(runs["peer"])
    first = next(iter(run["members"]))
    run["members"][first]["coco"]["metrics"]["AP"] = 3.0  # a percentage where a fraction belongs
    (tmp_path / "results.json").write_text(json.dumps(run))
    with pytest.raises(DataError, match="not a fraction"):
        results_from_run(tmp_path, "x")
