"""`detclip-bench predict`: inputs, prompts, skips and the COCO files with a fake detector; then the real
DetCLIPv2 reference model and a transformers peer end to end, scored with `detclip-bench score`."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from detclip_bench.adapters import models
from detclip_bench.adapters.base import Prediction
from detclip_bench.cli.main import main
from detclip_bench.errors import DataError
from detclip_bench.predict import (
    collect_images,
    image_ids_from,
    parse_prompts,
    predict_images,
    read_vocab,
)

# fake detections as fractions of the image size: (box xyxy, score, label)
FRACTIONS = [((0.1, 0.2, 0.5, 0.6), 0.9, 0), ((0.5, 0.5, 0.9, 0.8), 0.4, 1), ((0.0, 0.0, 1.0, 1.0), 0.05, 0)]


class FractionDetector:
    """Boxes at fixed fractions of each image's size, so expected pixel coordinates follow from the size alone."""

    name = "fraction-test-detector"

    def __init__(self):
        self.batches: list[int] = []
        self.prompts = None

    def identity(self):
        return "fraction-v1"

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        self.batches.append(len(images))
        self.prompts = list(prompts)
        out = []
        for im in images:
            w, h = im.size
            rows = [(np.array(f) * [w, h, w, h], s, lab % len(prompts)) for f, s, lab in FRACTIONS]
            rows = [r for r in rows if score_thresh is None or r[1] > score_thresh][:max_dets_per_image]
            out.append(Prediction([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))
        return out


def expected_xywh(w, h, k):
    x1, y1, x2, y2 = np.array(FRACTIONS[k][0]) * [w, h, w, h]
    return [x1, y1, x2 - x1, y2 - y1]


@pytest.fixture
def fake(monkeypatch):
    det = FractionDetector()
    monkeypatch.setattr(models, "load_detector", lambda spec, device="cpu": det)
    return det


@pytest.fixture
def pictures(tmp_path):
    """a/one.jpg (dark), a/sub/two.png (light), b/three.jpeg, plus a non-image file and an empty folder."""
    root = tmp_path / "pics"
    (root / "a" / "sub").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "empty").mkdir()
    Image.new("RGB", (200, 100), (10, 10, 20)).save(root / "a" / "one.jpg")
    Image.new("RGB", (120, 160), (245, 245, 240)).save(root / "a" / "sub" / "two.png")
    Image.new("RGB", (64, 48), (90, 140, 30)).save(root / "b" / "three.jpeg")
    (root / "a" / "notes.txt").write_text("not an image")
    return root


def _read(out):
    return (
        json.loads((out / "predictions.json").read_text()),
        json.loads((out / "inputs.json").read_text()),
        json.loads((out / "run_info.json").read_text()),
    )


def test_folders_globs_files_dedup_and_coco_files(fake, pictures, tmp_path, capsys):
    out = tmp_path / "out"
    args = [
        "predict",
        "--model",
        "fake",
        "--images",
        str(pictures / "a"),
        str(pictures / "b" / "*.jpeg"),
        str(pictures / "a" / "one.jpg"),
        str(pictures / "empty"),
        "--prompts",
        " cat,red  apple, ,",
        "--out",
        str(out),
        "--batch-size",
        "2",
    ]
    assert main(args) == 0
    assert "predict: 3 images, 0 skipped, 9 detections over 2 prompts" in capsys.readouterr().out
    preds, inputs, info = _read(out)
    # sorted path order, ids 1..N, file names relative to the shared folder, sizes from the pixels
    assert [(im["id"], im["file_name"], im["width"], im["height"]) for im in inputs["images"]] == [
        (1, "a/one.jpg", 200, 100),
        (2, "a/sub/two.png", 120, 160),
        (3, "b/three.jpeg", 64, 48),
    ]
    assert inputs["categories"] == [
        {"id": 1, "name": "cat", "prompt": "cat"},
        {"id": 2, "name": "red apple", "prompt": "red apple"},
    ]
    assert fake.prompts == ["cat", "red apple"] and fake.batches == [2, 1]
    sizes = {im["id"]: (im["width"], im["height"]) for im in inputs["images"]}
    for image_id, (w, h) in sizes.items():
        mine = [p for p in preds if p["image_id"] == image_id]
        assert [p["score"] for p in mine] == pytest.approx([0.9, 0.4, 0.05])  # by descending score
        assert [p["category_id"] for p in mine] == [1, 2, 1]
        for p, k in zip(mine, range(3), strict=True):
            assert p["bbox"] == pytest.approx(expected_xywh(w, h, k), abs=1e-3)
    assert set(preds[0]) == {"image_id", "category_id", "bbox", "score"}
    assert (
        info["model_spec"] == "fake" and info["identity"] == "fraction-v1" and info["prompts"] == ["cat", "red apple"]
    )
    assert info["score_threshold"] is None and info["max_dets_per_image"] == 100 and "numpy" in info["versions"]
    for im in inputs["images"]:
        with Image.open(out / im["vis"]) as vis:
            assert vis.format == "JPEG" and vis.size == (im["width"], im["height"])
    assert sorted(p.name for p in (out / "vis").iterdir()) == ["one.jpg", "three.jpg", "two.jpg"]
    # the drawing changed the pictures: box colours on the dark image, dark outlines on the light one
    dark = np.asarray(Image.open(out / "vis" / "one.jpg"))
    assert dark.max() > 200
    light = np.asarray(Image.open(out / "vis" / "two.jpg"))
    assert light.min() < 50

    # threshold and budget: the 0.05 box goes, then only the best one stays; --no-draw writes no pictures
    assert (
        main(
            [
                "predict",
                "--model",
                "fake",
                "--images",
                str(pictures),
                "--prompts",
                "cat, dog",
                "--threshold",
                "0.1",
                "--max-dets",
                "1",
                "--no-draw",
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 0
    )
    preds2, _, info2 = _read(tmp_path / "o2")
    assert [p["score"] for p in preds2] == pytest.approx([0.9] * 3) and info2["score_threshold"] == 0.1
    assert not (tmp_path / "o2" / "vis").exists()


def test_predictions_score_against_a_gt_with_the_same_ids(fake, pictures, tmp_path, capsys):
    """The best fake box per image as GT: `score` on predictions.json must give AP 1 for that class."""
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                "--model",
                "fake",
                "--images",
                str(pictures),
                "--prompts",
                "cat, dog",
                "--threshold",
                "0.5",
                "--out",
                str(out),
                "--no-draw",
            ]
        )
        == 0
    )
    _, inputs, _ = _read(out)
    anns = [
        {
            "id": i + 1,
            "image_id": im["id"],
            "category_id": 1,
            "bbox": expected_xywh(im["width"], im["height"], 0),
            "area": 1.0,
            "iscrowd": 0,
        }
        for i, im in enumerate(inputs["images"])
    ]
    gt = tmp_path / "gt.json"
    gt.write_text(
        json.dumps(
            {
                "images": inputs["images"],
                "annotations": anns,
                "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            }
        )
    )
    capsys.readouterr()
    assert main(["score", "--gt", str(gt), "--pred", str(out / "predictions.json"), "--protocol", "coco"]) == 0
    assert "AP=100.00" in capsys.readouterr().out


def test_prompt_errors(fake, pictures, tmp_path, capsys):
    assert parse_prompts(" cat ,, red   apple,").prompts == ("cat", "red apple")
    with pytest.raises(DataError, match="duplicate prompt 'cat' and 'Cat'"):
        parse_prompts("cat, dog, Cat")
    with pytest.raises(DataError, match="no prompts"):
        parse_prompts(" , ,")
    base = ["predict", "--model", "fake", "--images", str(pictures), "--out", str(tmp_path / "o")]
    assert main([*base, "--prompts", "cat, cat"]) == 2
    assert "duplicate prompt 'cat'" in capsys.readouterr().err
    assert main([*base, "--prompts", ","]) == 2
    assert "no prompts" in capsys.readouterr().err
    assert main([*base, "--prompts", "cat", "--threshold", "1.5"]) == 2
    with pytest.raises(SystemExit):  # --prompts and --vocab exclude each other
        main([*base, "--prompts", "cat", "--vocab", "x.txt"])
    assert not (tmp_path / "o").exists()


def test_vocab_files(tmp_path):
    txt = tmp_path / "v.txt"
    txt.write_text("# classes\ncat\n\n  red   apple \nperson, a human\n")
    v = read_vocab(txt)
    assert v.prompts == ("cat", "red apple", "person, a human") and v.category_ids == (1, 2, 3)
    js = tmp_path / "v.json"
    js.write_text(json.dumps(["dog", "cat"]))
    assert read_vocab(js).prompts == ("dog", "cat")
    roboflow = tmp_path / "rf.json"  # ODinW: the root category goes, ids stay
    roboflow.write_text(
        json.dumps(
            {
                "images": [],
                "annotations": [],
                "categories": [
                    {"id": 0, "name": "fish-zoo", "supercategory": "none"},
                    {"id": 7, "name": "shark", "supercategory": "fish-zoo"},
                    {"id": 3, "name": "fish", "supercategory": "fish-zoo"},
                ],
            }
        )
    )
    v = read_vocab(roboflow)
    assert v.prompts == ("fish", "shark") and v.category_ids == (3, 7)
    lvis = tmp_path / "lvis.json"
    lvis.write_text(
        json.dumps(
            {
                "categories": [
                    {"id": 2, "name": "bat_(animal)", "def": "a flying mammal", "frequency": "r"},
                    {"id": 1, "name": "ice_cream", "def": "x"},
                ]
            }
        )
    )
    v = read_vocab(lvis)
    assert (
        v.prompts == ("ice cream", "bat (animal)")
        and v.category_ids == (1, 2)
        and v.names == ("ice_cream", "bat_(animal)")
    )
    txt.write_text("cat\nCat\n")
    with pytest.raises(DataError, match="duplicate prompt"):
        read_vocab(txt)
    js.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="categories"):
        read_vocab(js)


def test_corrupt_files_are_counted_skips(fake, pictures, tmp_path, capsys, caplog):
    (pictures / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    good = (pictures / "b" / "three.jpeg").read_bytes()
    (pictures / "b" / "truncated.jpeg").write_bytes(good[: len(good) // 3])
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert (
            main(["predict", "--model", "fake", "--images", str(pictures), "--prompts", "cat", "--out", str(out)]) == 0
        )
    assert "predict: 5 images, 2 skipped" in capsys.readouterr().out
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "broken.jpg" in warned and "truncated.jpeg" in warned
    preds, inputs, info = _read(out)
    # ids are given in path order before reading: a skipped file's id stays unused, the others do not move
    assert [(im["id"], im["file_name"]) for im in inputs["images"]] == [
        (2, "a/one.jpg"),
        (3, "a/sub/two.png"),
        (4, "b/three.jpeg"),
    ]
    assert sorted((s["image_id"], s["path"].rsplit("/", 1)[-1]) for s in info["skipped"]) == [
        (1, "broken.jpg"),
        (5, "truncated.jpeg"),
    ]
    assert all("corrupt or unreadable image" in s["reason"] for s in info["skipped"])
    assert {p["image_id"] for p in preds} == {2, 3, 4}


def test_all_unreadable_is_exit_1_and_missing_inputs_are_errors(fake, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"nope")
    (bad / "y.png").write_bytes(b"")
    out = tmp_path / "out"
    assert main(["predict", "--model", "fake", "--images", str(bad), "--prompts", "cat", "--out", str(out)]) == 1
    assert "none of the 2 images could be read" in capsys.readouterr().err
    assert not out.exists()
    assert main(["predict", "--model", "fake", "--images", str(tmp_path / "nowhere"), "--prompts", "cat"]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["predict", "--model", "fake", "--images", str(tmp_path / "*.webp"), "--prompts", "cat"]) == 1
    assert "matches no image file" in capsys.readouterr().err


def test_image_ids_from_a_coco_json(pictures, tmp_path):
    paths = collect_images([str(pictures / "**" / "*.*")])
    assert [p.name for p in paths] == ["one.jpg", "two.png", "three.jpeg"]
    gt = tmp_path / "gt.json"
    gt.write_text(
        json.dumps(
            {
                "images": [
                    {"id": 40, "file_name": "sub/two.png"},
                    {"id": 7, "file_name": "one.jpg"},
                    {"id": 9, "coco_url": "http://images.cocodataset.org/val2017/three.jpeg"},  # LVIS v1: no file_name
                    {"id": 11, "file_name": "other/one.jpg"},
                ]
            }
        )
    )
    # one.jpg: two entries share the base name, but the path suffix "one.jpg" alone is an exact file_name
    assert image_ids_from(gt, paths) == [7, 40, 9]
    gt.write_text(json.dumps({"images": [{"id": 1, "file_name": "one.jpg"}]}))
    with pytest.raises(DataError, match="2 input image"):
        image_ids_from(gt, paths)
    det = FractionDetector()
    run = predict_images(det, paths, ["a"], image_ids=[7, 40, 9], progress=False)
    assert [im["id"] for im in run.images] == [7, 40, 9] and {d["image_id"] for d in run.detections} == {7, 40, 9}


# ---- real models -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from detclip_bench.mini_world import generate

    root = tmp_path_factory.mktemp("predict_world")
    generate(root, scale=0.1, seed=0, progress=False)
    return root


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*fewer than K=.*:UserWarning")
def test_detclipv2_predict_scores_like_score_files_and_the_suite_runner(world, tmp_path, capsys):
    import dataclasses

    from detclip_bench.adapters.models import load_detector
    from detclip_bench.metrics.score import score_files
    from detclip_bench.suites import get_suite
    from detclip_bench.suites.runner import evaluate_suite
    from reference_model.detclipv2 import create_model

    model = tmp_path / "model"
    create_model("detclipv2-mini").save_pretrained(model)  # untrained, but it detects (low scores)
    gt = world / "lvis" / "lvis_v1_minival.json"
    listed = json.loads(gt.read_text())["images"]
    images = [str(world / "coco" / "val2017" / im["coco_url"].rsplit("/", 1)[-1]) for im in listed][:2]

    # --vocab the GT json (its ids), --image-ids-from the GT json; scored by the verb and by the library
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                "--model",
                str(model),
                "--images",
                *images,
                "--vocab",
                str(gt),
                "--image-ids-from",
                str(gt),
                "--threshold",
                "0.001",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    preds, inputs, _ = _read(out)
    assert preds and {im["id"] for im in inputs["images"]} <= {im["id"] for im in listed}
    assert {p["category_id"] for p in preds} <= {c["id"] for c in json.loads(gt.read_text())["categories"]}
    for im in inputs["images"]:
        with Image.open(out / im["vis"]) as vis, Image.open(im["path"]) as src:
            assert vis.format == "JPEG" and vis.size == src.size == (im["width"], im["height"])
    capsys.readouterr()
    score_json = tmp_path / "score.json"
    assert (
        main(
            [
                "score",
                "--gt",
                str(gt),
                "--pred",
                str(out / "predictions.json"),
                "--protocol",
                "coco",
                "--out",
                str(score_json),
            ]
        )
        == 0
    )
    via_cli = json.loads(score_json.read_text())["metrics"]
    direct = score_files(gt, out / "predictions.json", "coco").metrics
    assert via_cli == pytest.approx(direct) and via_cli["AP"] >= 0

    # --suite: the suite's prompts, ids, threshold and budget, so its protocol's AP matches the suite runner's
    # on a GT reduced to the same images
    sub = tmp_path / "sub_world"
    (sub / "lvis").mkdir(parents=True)
    (sub / "coco").symlink_to(world / "coco")
    full = json.loads(gt.read_text())
    keep = {im["id"] for im in inputs["images"]}
    small = {
        **full,
        "images": [im for im in full["images"] if im["id"] in keep],
        "annotations": [a for a in full["annotations"] if a["image_id"] in keep],
    }
    (sub / "lvis" / "lvis_v1_minival.json").write_text(json.dumps(small))
    out2 = tmp_path / "out2"
    assert (
        main(
            [
                "predict",
                "--model",
                str(model),
                "--images",
                *images,
                "--suite",
                "mini-lvis",
                "--data-root",
                str(sub),
                "--image-ids-from",
                str(gt),
                "--out",
                str(out2),
                "--no-draw",
            ]
        )
        == 0
    )
    info = json.loads((out2 / "run_info.json").read_text())
    suite = get_suite("mini-lvis")
    assert info["score_threshold"] == suite.score_threshold and info["max_dets_per_image"] == suite.max_dets_per_image
    assert info["prompts"][0].startswith("bagel, ")  # "name, definition", as the suite prompts
    suite = dataclasses.replace(suite, name="mini-lvis-predict-test")
    result = evaluate_suite(load_detector(str(model)), suite, sub, progress=False)  # one batch, as predict's
    runner_metrics = result.members["lvis-minival"]["lvis-fixed"].metrics
    mine = score_files(sub / "lvis" / "lvis_v1_minival.json", out2 / "predictions.json", "lvis-fixed").metrics
    assert mine == pytest.approx(runner_metrics, abs=1e-6)


def test_hf_peer_predicts(tmp_path, capsys):
    from tests.adapters import tiny_models

    model = tiny_models.save_owl(tmp_path / "owl", "owlv2")
    pics = tmp_path / "pics"
    pics.mkdir()
    for k, im in enumerate(tiny_models.random_images([(96, 64), (50, 80)])):
        im.save(pics / f"p{k}.png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                "--model",
                f"hf:{model}",
                "--images",
                str(pics),
                "--prompts",
                "cat, dog",
                "--threshold",
                "0",
                "--max-dets",
                "5",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    preds, inputs, info = _read(out)
    assert [im["id"] for im in inputs["images"]] == [1, 2] and info["model_spec"] == f"hf:{model}"
    assert isinstance(preds, list) and all(p["category_id"] in (1, 2) and p["image_id"] in (1, 2) for p in preds)
    assert len([p for p in preds if p["image_id"] == 1]) <= 5
    assert sorted(p.name for p in (out / "vis").iterdir()) == ["p0.jpg", "p1.jpg"]
