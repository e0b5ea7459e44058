"""The FiftyOne App served on loopback shows the dataset in headless Chromium, then shuts down."""

import json
import shutil
import subprocess
import urllib.request

import numpy as np
import pytest
from PIL import Image

from detclip_bench.analysis.app import serving
from detclip_bench.analysis.fo_env import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1400,900",
         "--virtual-time-budget=6000"]


def _chromium(tmp_path, url, *extra):
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chrome'}", *extra, url],
                          capture_output=True, text=True, timeout=90)


def _listening(port):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    except OSError:
        return False
    return True


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI: apt-get install -y chromium)")
def test_app_shows_the_dataset_in_headless_chromium(fo_state, lvis_run, mini_root, tmp_path):
    from detclip_bench.analysis.fo_dataset import build_dataset
    from detclip_bench.analysis.run_dir import load_run

    ds = build_dataset(load_run(lvis_run, data_root=mini_root), name="t-app", progress=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}/datasets/{ds.name}"
    with serving(ds, port=port):
        query = {"query": 'query { datasets(search: "", first: 50) { edges { node { name } } } }'}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps(query).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            names = [e["node"]["name"] for e in json.load(r)["data"]["datasets"]["edges"]]
        assert ds.name in names
        for _attempt in range(3):  # a fresh server can first render only its loader
            dom = _chromium(tmp_path, url, "--dump-dom").stdout
            if "ground_truth" in dom:
                break
        assert ds.name in dom and "ground_truth" in dom and "predictions" in dom and "eval_tp" in dom
        shot = tmp_path / "app.png"
        _chromium(tmp_path, url, f"--screenshot={shot}")
        pixels = np.asarray(Image.open(shot).convert("RGB"), np.float32)
        assert pixels.shape[:2] == (900, 1400)
        assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # not a blank page
    assert not _listening(port)  # the App's server is gone after close
