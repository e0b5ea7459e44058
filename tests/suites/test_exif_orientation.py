"""Photos whose EXIF Orientation says "rotated" are read upright wherever a model sees them (issue 27.4).

A phone stores a portrait photo as landscape pixels plus Orientation=6 ("turn 90° clockwise to show");
COCO annotation tools label the upright picture. Inference must turn the pixels first, or every box lands in
the wrong frame (AP 0 on such images). The test photo is written here: stored 80×40, left half red, right
half blue, Orientation=6, so upright it is 40×80 with the red half on top.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detclip_bench.adapters.base import Prediction
from detclip_bench.predict.arrays import PredictionArrays
from detclip_bench.schema import EXIF_ORIENTATION, ImageRef
from detclip_bench.suites.custom import dataset_suite
from detclip_bench.suites.predictions import cache_path
from detclip_bench.suites.runner import evaluate_suite

STORED = (80, 40)  # (width, height) of the pixels in the file
UPRIGHT = (40, 80)
BOX = (0.1, 0.1, 0.5, 0.9)  # the detector's box, as fractions of the image it is given


def rotated_photo(path: Path) -> Path:
    pixels = np.zeros((STORED[1], STORED[0], 3), np.uint8)
    pixels[:, : STORED[0] // 2] = (220, 20, 20)
    pixels[:, STORED[0] // 2 :] = (20, 20, 220)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    return path


def test_imageref_turns_the_pixels_upright_only_when_asked(tmp_path):
    photo = rotated_photo(tmp_path / "portrait.jpg")
    stored = ImageRef(path=str(photo)).open()
    upright = ImageRef(path=str(photo)).open(exif_transpose=True)
    assert stored.size == STORED and upright.size == UPRIGHT and upright.mode == "RGB"
    top, bottom = np.asarray(upright)[5, 20], np.asarray(upright)[75, 20]
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]  # turned clockwise: the red half is on top
    assert upright.getexif().get(EXIF_ORIENTATION, 1) == 1  # turning twice would undo it
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", STORED, (1, 2, 3)).save(plain)
    assert ImageRef(path=str(plain)).open(exif_transpose=True).size == STORED


class FractionBox:
    """One box at fixed fractions of whatever image it is given; records the sizes it saw."""

    name = "fraction-box"

    def __init__(self):
        self.sizes: list[tuple[int, int]] = []

    def identity(self) -> str:
        return "fraction-box-v1"

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        self.sizes += [im.size for im in images]
        return [Prediction([np.array(BOX) * [*im.size, *im.size]], [0.9], [0]) for im in images]


@pytest.fixture
def export(tmp_path) -> Path:
    """A Roboflow-style export with one rotated photo, annotated (as COCO tools do) in the upright frame."""
    root = tmp_path / "phone.v1.coco"
    (root / "test").mkdir(parents=True)
    rotated_photo(root / "test" / "portrait.jpg")
    w, h = UPRIGHT
    x1, y1, x2, y2 = np.array(BOX) * [w, h, w, h]
    gt = {
        "images": [{"id": 1, "file_name": "portrait.jpg", "width": w, "height": h}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "mug", "supercategory": "none"}],
    }
    (root / "test" / "_annotations.coco.json").write_text(json.dumps(gt))
    return root


def test_suite_evaluation_reads_upright_and_scores_the_upright_boxes(export, tmp_path):
    suite = dataset_suite(str(export), finetune=False)
    detector = FractionBox()
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = evaluate_suite(detector, suite, tmp_path, out_dir=out, cache_dir=cache, progress=False)
    assert detector.sizes == [UPRIGHT]
    assert result.aggregate()["AP"] == pytest.approx(1.0)  # stored-frame boxes would miss the GT (AP 0)
    assert json.loads((out / "run_info.json").read_text())["exif_transpose"] is True
    target = suite.targets(tmp_path)[0]
    _, meta = PredictionArrays.load(cache_path(cache, detector.identity(), suite, target))
    assert meta["exif_transpose"] is True


def test_a_cache_made_without_exif_transpose_is_recomputed(export, tmp_path):
    suite = dataset_suite(str(export), finetune=False)
    detector = FractionBox()
    cache = tmp_path / "cache"
    evaluate_suite(detector, suite, tmp_path, cache_dir=cache, progress=False)
    path = cache_path(cache, detector.identity(), suite, suite.targets(tmp_path)[0])
    arrays, meta = PredictionArrays.load(path)
    arrays.save(path, {k: v for k, v in meta.items() if k != "exif_transpose"})  # as an older version wrote it
    evaluate_suite(detector, suite, tmp_path, cache_dir=cache, progress=False)
    assert detector.sizes == [UPRIGHT, UPRIGHT]  # predicted again, not read from the old cache
    evaluate_suite(detector, suite, tmp_path, cache_dir=cache, progress=False)
    assert len(detector.sizes) == 2  # the rewritten cache is reused


def test_the_export_sidecar_says_inputs_are_upright(tmp_path):
    pytest.importorskip("onnx")
    import torch

    from reference_model.detclipv2 import DetCLIPv2
    from reference_model.detclipv2.export import export_model
    from tests.reference_model.conftest import tiny_config

    torch.manual_seed(0)
    model = DetCLIPv2(tiny_config(deformable=False)).eval()
    sidecar = export_model(model, ["mug", "cat"], tmp_path / "ts", format="torchscript", check=False)
    assert sidecar["input"]["exif_transpose"] is True
    assert "exif_transpose" in sidecar["input"]["preprocess"]
