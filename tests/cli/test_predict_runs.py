"""`detclip-bench predict` safe defaults (issue 27.2-27.4): numbered run folders, no reading of its own output,
a drawing threshold apart from the results' threshold, and upright (EXIF-turned) photos."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import detclip_bench.predict.images as predict_images_module
import detclip_bench.predict.run as predict_run
from detclip_bench.adapters import models
from detclip_bench.adapters.base import Prediction
from detclip_bench.cli import predict as predict_cli
from detclip_bench.cli.main import main
from detclip_bench.schema import EXIF_ORIENTATION

# (box xyxy as fractions of the image, score, label): one above 0.3, one between the thresholds, one near 0
DETECTIONS = [((0.1, 0.2, 0.5, 0.6), 0.9, 0), ((0.5, 0.5, 0.9, 0.8), 0.4, 1), ((0.0, 0.0, 1.0, 1.0), 0.05, 0)]
MODEL_THRESHOLD = 0.01


class LowThresholdDetector:
    """Like DetCLIPv2: states its own low threshold in ``config.score_thresh``; records the sizes it is given."""

    name = "low-threshold-test-detector"
    config = SimpleNamespace(score_thresh=MODEL_THRESHOLD)

    def __init__(self):
        self.sizes: list[tuple[int, int]] = []

    def identity(self):
        return "low-threshold-v1"

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        thresh = MODEL_THRESHOLD if score_thresh is None else score_thresh
        out = []
        for im in images:
            self.sizes.append(im.size)
            w, h = im.size
            rows = [(np.array(f) * [w, h, w, h], s, lab) for f, s, lab in DETECTIONS if s > thresh]
            out.append(Prediction([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))
        return out


@pytest.fixture
def det(monkeypatch):
    d = LowThresholdDetector()
    monkeypatch.setattr(models, "load_detector", lambda spec, device="cpu": d)
    return d


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    Image.new("RGB", (64, 48), (10, 10, 20)).save(root / "one.jpg")
    Image.new("RGB", (48, 64), (240, 240, 230)).save(root / "two.png")
    return root


def _predict(*extra: str) -> int:
    return main(["predict", "--model", "fake", "--prompts", "cat, dog", *extra])


def _info(out) -> dict:
    return json.loads((out / "run_info.json").read_text())


def test_the_cli_states_the_defaults_the_run_uses():
    assert predict_cli.DEFAULT_OUT == predict_images_module.DEFAULT_OUT
    assert predict_cli.DEFAULT_VIS_THRESHOLD == predict_run.DEFAULT_VIS_THRESHOLD == 0.3


def test_default_out_is_numbered_and_a_given_out_with_files_is_refused(det, photos, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _predict("--images", str(photos)) == 0
    assert _predict("--images", str(photos)) == 0
    assert _predict("--images", str(photos), "--no-draw") == 0
    printed = capsys.readouterr().out
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["predict", "predict2", "predict3"]
    assert "-> runs/predict2/predictions.json" in printed and "-> runs/predict3/predictions.json" in printed
    for name in ("predict", "predict2"):
        assert _info(runs / name)["out"] == f"runs/{name}"
        assert sorted(p.name for p in (runs / name / "vis").iterdir()) == ["one.jpg", "two.jpg"]

    # an explicit folder holding files: refused before any model runs, nothing touched
    before = (runs / "predict" / "predictions.json").read_bytes()
    det.sizes.clear()
    assert _predict("--images", str(photos), "--out", str(runs / "predict")) == 2
    err = capsys.readouterr().err
    assert "already holds files" in err and "--exist-ok" in err and det.sizes == []
    assert (runs / "predict" / "predictions.json").read_bytes() == before

    # --exist-ok: the old pictures go, so old and new never mix
    (runs / "predict" / "vis" / "stale-from-another-run.jpg").write_bytes(b"old")
    (photos / "two.png").unlink()
    assert _predict("--images", str(photos), "--out", str(runs / "predict"), "--exist-ok") == 0
    assert sorted(p.name for p in (runs / "predict" / "vis").iterdir()) == ["one.jpg"]
    assert _info(runs / "predict")["images"] == 1
    # no --out with --exist-ok: the default folder itself, not a new number
    assert _predict("--images", str(photos), "--exist-ok") == 0
    assert sorted(p.name for p in runs.iterdir()) == ["predict", "predict2", "predict3"]
    # an empty existing folder is fine without --exist-ok
    (tmp_path / "empty").mkdir()
    assert _predict("--images", str(photos), "--out", str(tmp_path / "empty")) == 0


def test_an_input_folder_holding_the_out_folder_never_predicts_its_drawings(det, photos, caplog, capsys):
    out = photos / "predictions"
    assert _predict("--images", str(photos), "--out", str(out)) == 0
    assert sorted(p.name for p in (out / "vis").iterdir()) == ["one.jpg", "two.jpg"]
    det.sizes.clear()
    with caplog.at_level(logging.WARNING):
        assert _predict("--images", str(photos), "--out", str(out), "--exist-ok") == 0
    assert len(det.sizes) == 2  # the two photos, not their two drawings
    inputs = json.loads((out / "inputs.json").read_text())
    assert [im["file_name"] for im in inputs["images"]] == ["one.jpg", "two.png"]
    assert _info(out)["inputs_inside_out"] == 2 and _info(out)["images"] == 2
    assert "inside the output folder" in caplog.text
    assert "predict: 2 images" in capsys.readouterr().out
    # the API skips them too (a caller that did not filter)
    paths = sorted(p for p in photos.rglob("*") if p.suffix in (".jpg", ".png"))
    assert len(paths) == 4
    run = predict_run.predict_images(det, paths, ["cat", "dog"], out_dir=out, progress=False)
    assert run.n_inputs == 2 and run.info["inputs_inside_out"] == 2
    assert [im["id"] for im in run.images] == [1, 2]


def test_drawings_use_the_vis_threshold_and_run_info_records_both(det, photos, tmp_path, monkeypatch):
    drawn: list[list[float]] = []
    real = predict_run.draw_detections

    def spy(image, boxes, scores, labels, names):
        drawn.append(sorted(round(float(v), 3) for v in scores))
        return real(image, boxes, scores, labels, names)

    monkeypatch.setattr(predict_run, "draw_detections", spy)
    out = tmp_path / "o"
    assert _predict("--images", str(photos), "--out", str(out)) == 0
    preds = json.loads((out / "predictions.json").read_text())
    assert sorted(round(p["score"], 3) for p in preds if p["image_id"] == 1) == [0.05, 0.4, 0.9]  # all kept
    assert drawn == [[0.4, 0.9], [0.4, 0.9]]  # the 0.05 box is not drawn
    info = _info(out)
    assert info["score_threshold"] == MODEL_THRESHOLD and info["score_threshold_from"] == "the model"
    assert info["vis_threshold"] == 0.3
    # the device the run used, not the option's "auto" (a fake detector without weights: what auto resolves to)
    assert info["device_requested"] == "auto" and info["device"] == ("cuda" if torch.cuda.is_available() else "cpu")

    drawn.clear()
    out2 = tmp_path / "o2"
    assert _predict("--images", str(photos), "--out", str(out2), "--vis-threshold", "0.5", "--threshold", "0.02") == 0
    assert drawn == [[0.9], [0.9]]
    info = _info(out2)
    assert info["score_threshold"] == 0.02 and info["score_threshold_from"] == "--threshold"
    assert info["vis_threshold"] == 0.5
    assert _predict("--images", str(photos), "--out", str(tmp_path / "o3"), "--vis-threshold", "1.5") == 2


def test_a_rotated_photo_is_predicted_upright(det, tmp_path):
    folder = tmp_path / "phone"
    folder.mkdir()
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored landscape, shown portrait
    Image.new("RGB", (80, 40), (200, 30, 30)).save(folder / "portrait.jpg", exif=exif)
    out = tmp_path / "o"
    assert _predict("--images", str(folder), "--out", str(out)) == 0
    assert det.sizes == [(40, 80)]
    (image,) = json.loads((out / "inputs.json").read_text())["images"]
    assert (image["width"], image["height"]) == (40, 80)
    best = max(json.loads((out / "predictions.json").read_text()), key=lambda p: p["score"])
    assert best["bbox"] == pytest.approx([4.0, 16.0, 16.0, 32.0])  # (0.1, 0.2, 0.5, 0.6) of 40×80
    with Image.open(out / image["vis"]) as vis:
        assert vis.size == (40, 80)
    assert _info(out)["exif_transpose"] is True
