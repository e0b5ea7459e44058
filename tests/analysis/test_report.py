"""``detclip-bench report``: the static page, its figures, and numbers equal to results.json."""

import argparse
import json
import re

import numpy as np
import pytest
from PIL import Image

from detclip_bench.analysis.pr import pr_curve
from detclip_bench.analysis.report import BREAKDOWN_KEYS
from detclip_bench.analysis.run_dir import load_run
from detclip_bench.cli import report


@pytest.fixture(scope="module")
def written(lvis_run, mini_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    p = argparse.ArgumentParser()
    report.add_parser(p.add_subparsers())
    args = p.parse_args(["report", str(lvis_run), "--data-root", str(mini_root), "--out", str(out), "--gallery", "4"])
    assert args.func(args) == 0
    return out


def test_pages_reference_real_images(written):
    html = (written / "report.html").read_text()
    md = (written / "report.md").read_text()
    html_imgs = re.findall(r"<img src=['\"]([^'\"]+)['\"]", html)
    md_imgs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(html_imgs) == sorted(md_imgs)
    assert "figures/pr_curves.png" in html_imgs and "figures/ap_lvis-minival.png" in html_imgs
    assert sum(i.startswith("figures/fp_") for i in html_imgs) == 4
    for rel in html_imgs:
        with Image.open(written / rel) as im:
            im.verify()
        pixels = np.asarray(Image.open(written / rel).convert("L"))
        assert pixels.std() > 5, rel  # something was drawn


def test_rcf_breakdown_equals_results_json(written, lvis_run):
    results = json.loads((lvis_run / "results.json").read_text())
    md = (written / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| member |"))
    keys = [k.strip() for k in header.strip("|").split("|")][1:]
    assert {"APr", "APc", "APf"} <= set(keys) and set(keys) <= set(BREAKDOWN_KEYS)
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]]
        for line in md.splitlines()
        if line.startswith("| lvis-minival |") or line.startswith("| aggregate |")
    }
    metrics = {
        "lvis-minival": results["members"]["lvis-minival"]["lvis-fixed"]["metrics"],
        "aggregate": results["aggregate"]["metrics"],
    }
    for who, cells in rows.items():
        for key, cell in zip(keys, cells, strict=True):
            assert cell == f"{100 * metrics[who][key]:.1f}", (who, key)
    assert len(rows) == 2


def test_pr_curve_area_is_the_runs_ap50(lvis_run, mini_root):
    run = load_run(lvis_run, data_root=mini_root)
    curve = pr_curve(run.suite, run.members[0], run.primary)
    expect = json.loads((lvis_run / "results.json").read_text())["members"]["lvis-minival"]["lvis-fixed"]["metrics"]
    assert curve.ap50 == pytest.approx(expect["AP50"], abs=1e-12)
    assert np.all(np.diff(curve.precision) <= 1e-12)  # interpolated precision never rises with recall
