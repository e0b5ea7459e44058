"""``analyze --launch`` opens a readable default view, and the FiftyOne App served on loopback shows
it in headless Chromium, then shuts down."""

import argparse
import contextlib
import io
import json
import re
import shutil
import subprocess
import urllib.request

import numpy as np
import pytest
from PIL import Image

from detclip_bench.analysis import app
from detclip_bench.analysis.app import serving
from detclip_bench.analysis.views import ALL, DEFAULT_MIN_SCORE, DEFAULT_VIEW, VIEW_NAMES
from detclip_bench.cli import analyze
from tests.net import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--window-size=1400,900",
    "--virtual-time-budget=6000",
]


def _chromium(tmp_path, url, *extra):
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chrome'}", *extra, url],
        capture_output=True,
        text=True,
        timeout=240,
    )  # headless Chromium is slow on 2 busy cores


def _listening(port):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    except OSError:
        return False
    return True


def _launch(monkeypatch, fo_state, lvis_run, mini_root, *argv):
    """``analyze --launch`` up to the point where it would block serving: what would it open?"""
    opened = {}

    def fake_serve(dataset, *, port, address=app.LOOPBACK, view=None):
        opened.update(dataset=dataset, view=view, port=port)

    monkeypatch.setattr(app, "serve_until_interrupted", fake_serve)
    p = argparse.ArgumentParser()
    analyze.add_parser(p.add_subparsers())
    args = p.parse_args(
        [
            "analyze",
            "--results",
            str(lvis_run),
            "--data-root",
            str(mini_root),
            "--fiftyone-dir",
            str(fo_state),
            "--launch",
            *argv,
        ]
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert args.func(args) == 0
    return opened["dataset"], opened["view"], out.getvalue()


@pytest.fixture(scope="module")
def launched(fo_state, lvis_run, mini_root):
    with pytest.MonkeyPatch.context() as mp:
        return _launch(mp, fo_state, lvis_run, mini_root, "--name", "t-app")


def _listing(out):
    """view name -> (image count, opened?) from the terminal's saved-view list."""
    rows = [re.match(r"  ([* ]) (\S+) +(\d+)", line) for line in out.splitlines()]
    return {m[2]: (int(m[3]), m[1] == "*") for m in rows if m}


def test_launch_opens_confident_predictions_by_default(launched):
    from fiftyone import ViewField as F

    ds, view, out = launched
    assert view.name == DEFAULT_VIEW and [type(s).__name__ for s in view._stages] == ["FilterLabels"]
    assert view._stages[0].field == "predictions"
    assert len(view) == len(ds)  # every image stays, with all its GT
    assert view.count("ground_truth.detections") == ds.count("ground_truth.detections")
    n_all, n_shown = ds.count("predictions.detections"), view.count("predictions.detections")
    assert 0 < n_shown < n_all
    assert min(view.values("predictions.detections.confidence", unwind=True)) >= DEFAULT_MIN_SCORE
    assert n_shown == len(
        ds.filter_labels("predictions", F("confidence") >= DEFAULT_MIN_SCORE).values(
            "predictions.detections", unwind=True
        )
    )
    listing = _listing(out)
    assert set(listing) == {*VIEW_NAMES, ALL}
    assert listing[DEFAULT_VIEW] == (len(ds), True) and listing[ALL] == (len(ds), False)
    assert sum(marked for _, marked in listing.values()) == 1
    assert listing["high-score-false-positives"][0] == len(ds.load_saved_view("high-score-false-positives"))
    assert "saved-views dropdown" in out


def test_view_and_min_score_flags(monkeypatch, fo_state, lvis_run, mini_root):
    ds, view, out = _launch(
        monkeypatch, fo_state, lvis_run, mini_root, "--name", "t-app-flags", "--view", ALL, "--min-score", "0.9"
    )
    assert view is None  # the unfiltered dataset
    assert _listing(out)[ALL] == (len(ds), True)
    confident = ds.load_saved_view(DEFAULT_VIEW)
    assert min(confident.values("predictions.detections.confidence", unwind=True)) >= 0.9
    assert "0.9" in ds.get_saved_view_info(DEFAULT_VIEW)["description"]
    ds, view, _ = _launch(
        monkeypatch, fo_state, lvis_run, mini_root, "--name", "t-app-flags", "--view", "localization-errors"
    )
    assert view.name == "localization-errors"
    with pytest.raises(SystemExit, match="choose one of confident-predictions, worst-categories"):
        _launch(monkeypatch, fo_state, lvis_run, mini_root, "--name", "t-app-flags", "--view", "nope")
    ds.delete()


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium, or bash .ci/install-test-artefacts)"
)
def test_app_shows_the_default_view_in_headless_chromium(launched, tmp_path):
    ds, view, _ = launched
    port = free_port()
    url = f"http://127.0.0.1:{port}/datasets/{ds.name}"
    assert app.app_url(ds, port=port, view=view) == f"{url}?view={DEFAULT_VIEW}"
    with serving(ds, port=port, view=view) as session:
        assert session.view.name == DEFAULT_VIEW and session.view == ds.load_saved_view(DEFAULT_VIEW)
        query = {"query": 'query { datasets(search: "", first: 50) { edges { node { name } } } }'}
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps(query).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            names = [e["node"]["name"] for e in json.load(r)["data"]["datasets"]["edges"]]
        assert ds.name in names
        for _attempt in range(3):  # a fresh server can first render only its loader
            dom = _chromium(tmp_path, url, "--dump-dom").stdout
            if "ground_truth" in dom:
                break
        assert ds.name in dom and "ground_truth" in dom and "predictions" in dom and "eval_tp" in dom
        # the App opened on the saved view: its name in the saved-views selector, its stage in the view bar
        assert DEFAULT_VIEW in dom and "FilterLabels" in dom
        shot = tmp_path / "app.png"
        _chromium(tmp_path, url, f"--screenshot={shot}")
        pixels = np.asarray(Image.open(shot).convert("RGB"), np.float32)
        assert pixels.shape[:2] == (900, 1400)
        assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # not a blank page
        session.view = None  # what choosing "Unsaved view" in the App (or --view all) shows: every prediction
        for _attempt in range(3):
            dom = _chromium(tmp_path, url, "--dump-dom").stdout
            if "ground_truth" in dom:
                break
        assert "ground_truth" in dom and "FilterLabels" not in dom
    assert not _listening(port)  # the App's server is gone after close
