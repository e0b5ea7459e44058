"""``detclip-bench score`` and the typed result's renderings."""

import json

import pytest

from detclip_bench.cli.main import main
from detclip_bench.metrics import score_files
from detclip_bench.metrics.synthetic import make_detections, make_lvis_like

from .oracles import assert_same, devil_fixed_ap, lvis_standard


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("score")
    gt = make_lvis_like(40, 25, gt_per_image=6, seed=3)
    res = make_detections(gt, 320, seed=4).to_results()
    (tmp / "gt.json").write_text(json.dumps(gt))
    (tmp / "pred.json").write_text(json.dumps(res))
    return tmp, gt, res


@pytest.mark.parametrize("protocol", ["lvis", "lvis-fixed"])
def test_cli_writes_protocol_metrics_and_counts(files, protocol, capsys):
    tmp, gt, res = files
    out = tmp / f"{protocol}.json"
    argv = [
        "score",
        "--gt",
        str(tmp / "gt.json"),
        "--pred",
        str(tmp / "pred.json"),
        "--protocol",
        protocol,
        "--out",
        str(out),
    ]
    if protocol == "lvis-fixed":
        argv += ["--topk", "100"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    name = "lvis-fixed" if protocol == "lvis-fixed" else "lvis-standard"
    assert data["protocol"] == name and f"[{name}]" in printed
    ref, _ = devil_fixed_ap(gt, res, 100) if protocol == "lvis-fixed" else lvis_standard(gt, res)
    assert_same(data["metrics"], ref)
    assert data["topk_per_category"] == (100 if protocol == "lvis-fixed" else None)
    assert data["num_detections_received"] == len(res)
    assert len(data["categories"]) == 25


def test_cli_bad_file_is_error_line(files, capsys):
    tmp, _, _ = files
    (tmp / "bad.json").write_text("{not json")
    rc = main(["score", "--gt", str(tmp / "gt.json"), "--pred", str(tmp / "bad.json"), "--protocol", "coco"])
    assert rc == 1 and "bad.json" in capsys.readouterr().err


def test_result_renderings_state_protocol(files):
    tmp, _, _ = files
    result = score_files(tmp / "gt.json", tmp / "pred.json", "lvis-fixed", topk_per_category=50)
    df = result.to_dataframe()
    assert list(df.columns) == ["name", "frequency", "ap", "num_gt", "num_dets"]
    assert df["num_dets"].sum() == result.num_detections_evaluated
    assert set(df["frequency"]) <= {"r", "c", "f"}
    md = result.to_markdown()
    assert "lvis-fixed" in md and "K=50/category" in md
    assert json.loads(result.to_json())["protocol"] == "lvis-fixed"
    assert all(0 <= v <= 1 for v in result.metrics.values() if v != -1)


def test_results_records_may_carry_other_keys(files):
    """Detectron2/mmdetection results carry ids or segmentations too: ignored, same numbers."""
    tmp, _, res = files
    extra = [{**r, "id": k, "segmentation": {"size": [4, 4], "counts": "x"}} for k, r in enumerate(res)]
    (tmp / "pred_extra.json").write_text(json.dumps(extra))
    plain = score_files(tmp / "gt.json", tmp / "pred.json", "lvis")
    assert score_files(tmp / "gt.json", tmp / "pred_extra.json", "lvis").metrics == plain.metrics


@pytest.mark.parametrize("protocol", ["lvis", "lvis-fixed"])
def test_cli_bootstrap_puts_an_interval_beside_every_ap(files, protocol, capsys):
    tmp, _, _ = files
    out = tmp / f"{protocol}_boot.json"
    base = ["score", "--gt", str(tmp / "gt.json"), "--pred", str(tmp / "pred.json"), "--protocol", protocol]
    base += ["--topk", "100"] if protocol == "lvis-fixed" else []
    assert main([*base, "--out", str(tmp / "plain.json")]) == 0
    plain = json.loads((tmp / "plain.json").read_text())
    assert "intervals" not in plain  # off by default
    capsys.readouterr()
    assert main([*base, "--bootstrap", "25", "--bootstrap-seed", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["metrics"] == plain["metrics"]  # the deeper Fixed-AP pool held for the bootstrap scores the same
    assert set(data["intervals"]) == set(data["metrics"])
    for key, value in data["metrics"].items():
        entry = data["intervals"][key]
        assert entry["point"] == value and entry["seed"] == 5
        if value > -1:
            lo, hi = entry["interval"]
            assert lo <= hi and 0 < entry["n_replicates"] <= 25
    assert "95% interval" in printed and "bootstrap over images" in printed
    lo, hi = data["intervals"]["AP"]["interval"]
    assert f"[{100 * lo:.2f}, {100 * hi:.2f}]" in printed
    # the same draws as the library call
    result = score_files(
        tmp / "gt.json",
        tmp / "pred.json",
        protocol,
        topk_per_category=100 if protocol == "lvis-fixed" else None,
        bootstrap=25,
        bootstrap_seed=5,
    )
    assert result.intervals["AP"]["interval"] == [lo, hi]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # a usage error: argparse's exit status 2, the option named
        main([*base, "--bootstrap", "-1"])
    assert (
        exit_info.value.code == 2 and "--bootstrap must be 0 (off) or a number of resamples" in capsys.readouterr().err
    )
