"""``detclip-bench analyze`` on a real FiftyOne database: dataset, verdicts, AP info, saved views."""

import argparse
import math

import pandas as pd
import pytest

from detclip_bench.analysis.records import iter_records
from detclip_bench.analysis.run_dir import load_run
from detclip_bench.analysis.views import VIEW_NAMES
from detclip_bench.cli import analyze
from detclip_bench.errors import DataError


def _analyze(argv):
    p = argparse.ArgumentParser()
    analyze.add_parser(p.add_subparsers())
    args = p.parse_args(["analyze", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def lvis_dataset(fo_state, lvis_run, mini_root):
    import fiftyone as fo

    assert (
        _analyze(
            [
                "--results",
                str(lvis_run),
                "--data-root",
                str(mini_root),
                "--name",
                "t-lvis",
                "--fiftyone-dir",
                str(fo_state),
            ]
        )
        == 0
    )
    return fo.load_dataset("t-lvis")


def test_state_lives_in_the_project_local_folder(fo_state, lvis_dataset):
    import fiftyone.constants as foc

    assert foc.FIFTYONE_CONFIG_DIR.startswith(str(fo_state))
    assert any((fo_state / "db").iterdir())  # the WiredTiger files of the real mongod


def test_verdicts_on_the_dataset_equal_the_matcher(lvis_dataset, lvis_run, mini_root):
    run = load_run(lvis_run, data_root=mini_root)
    recs = {r.image_id: r for r in iter_records(run.members[0], progress=False)}
    assert len(lvis_dataset) == len(recs) == 10
    totals = {k: sum(r.match.counts[k] for r in recs.values()) for k in ("tp", "fp", "fn", "ignored")}
    assert {k: int(lvis_dataset.sum(f"eval_{k}")) for k in totals} == totals
    assert totals["ignored"] > 0 and totals["fp"] > 0 and totals["tp"] > 0  # federated rules were exercised
    for sample in lvis_dataset:
        rec = recs[sample.image_id]
        preds = sample.predictions.detections
        assert [p.eval for p in preds] == rec.match.det_status.tolist()
        assert all(p.tags[0] == p.eval for p in preds)
        assert [g.eval for g in sample.ground_truth.detections] == rec.match.gt_status.tolist()
        for p in preds:
            if p.eval == "ignored" and p.eval_reason == "unverified":
                assert p.label not in sample.neg_labels
                assert p.label not in {g.label for g in sample.ground_truth.detections}


def test_per_category_ap_from_our_evaluator_is_on_the_dataset(lvis_dataset, lvis_run):
    table = pd.read_csv(lvis_run / "lvis-minival-lvis-fixed.csv", index_col="id")
    stored = lvis_dataset.info["category_ap"]["lvis-minival"]["lvis-fixed"]
    assert len(stored) == len(table)
    for _, row in table.iterrows():
        expect = None if math.isnan(row["ap"]) else row["ap"]
        assert stored[row["name"]] == (pytest.approx(expect, abs=0) if expect is not None else None)
    assert lvis_dataset.info["primary_protocol"] == "lvis-fixed"


def test_saved_views_hold_exactly_what_they_promise(lvis_dataset):
    from fiftyone import ViewField as F

    assert set(lvis_dataset.list_saved_views()) == set(VIEW_NAMES)
    rules = {
        "localization-errors": lambda p: p.eval == "fp" and 0.1 <= p.eval_iou < 0.5,
        "duplicate-detections": lambda p: p.eval_reason == "duplicate" and p.eval_iou >= 0.5,
        "category-confusions": lambda p: p.eval_reason == "confusion" and p.confused_with not in (None, p.label),
        "high-score-false-positives": lambda p: p.eval == "fp" and p.confidence >= 0.5,
    }
    for name, rule in rules.items():
        view = lvis_dataset.load_saved_view(name)
        preds = [p for s in view for p in s.predictions.detections]
        expected = lvis_dataset.filter_labels("predictions", F("eval_reason") != "").values(
            "predictions.detections", unwind=True
        )
        assert preds, name  # the fake detector makes every kind of error
        assert all(rule(p) for p in preds), name
        n_all = sum(rule(p) for p in expected)
        assert len(preds) == n_all, name
    worst = lvis_dataset.load_saved_view("worst-categories")
    aps = lvis_dataset.info["category_ap"]["lvis-minival"]["lvis-fixed"]
    cutoff = sorted(v for v in aps.values() if v is not None)[9]
    assert all(aps[g.label] <= cutoff for s in worst for g in s.ground_truth.detections)
    rare = lvis_dataset.load_saved_view("rare-category-misses")
    assert all(g.eval == "fn" and g.frequency == "r" for s in rare for g in s.ground_truth.detections)


def test_rerun_replaces_the_dataset(fo_state, lvis_dataset, lvis_run, mini_root):
    import fiftyone as fo

    n = len(lvis_dataset)
    assert (
        _analyze(
            [
                "--results",
                str(lvis_run),
                "--data-root",
                str(mini_root),
                "--name",
                "t-lvis",
                "--fiftyone-dir",
                str(fo_state),
            ]
        )
        == 0
    )
    assert fo.list_datasets().count("t-lvis") == 1 and len(fo.load_dataset("t-lvis")) == n


def test_run_without_predictions_names_the_member(tmp_path, lvis_run, mini_root):
    (tmp_path / "results.json").write_bytes((lvis_run / "results.json").read_bytes())
    with pytest.raises(DataError, match=r"lvis-minival.*no predictions for this member"):
        load_run(tmp_path, data_root=mini_root)
    with pytest.raises(DataError, match="not 'mini-odinw13'"):
        load_run(lvis_run, suite="mini-odinw13", data_root=mini_root)


def test_an_unchanged_run_reuses_the_dataset_and_a_changed_one_rebuilds(
    fo_state, lvis_dataset, lvis_run, mini_root, monkeypatch, capsys
):
    import os

    from detclip_bench.analysis import fo_dataset

    builds = []
    real = fo_dataset.build_dataset
    monkeypatch.setattr(fo_dataset, "build_dataset", lambda *a, **k: builds.append(1) or real(*a, **k))
    argv = ["--results", str(lvis_run), "--data-root", str(mini_root), "--name", "t-lvis"]
    argv += ["--fiftyone-dir", str(fo_state)]
    assert _analyze(argv) == 0 and builds == []
    assert "dataset 't-lvis' reused" in capsys.readouterr().out
    assert _analyze([*argv, "--rebuild"]) == 0 and builds == [1]
    # a predictions file rewritten since: built again, and reused after that
    (npz,) = sorted((lvis_run / "predictions").glob("*.npz"))[:1]
    st = npz.stat()
    os.utime(npz, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _analyze(argv) == 0 and builds == [1, 1]
    assert "reused" not in capsys.readouterr().out
    assert _analyze(argv) == 0 and builds == [1, 1]
