"""imgaug 0.4.0's quokka (a real 960×643 photo with one hand-drawn box and polygon) as an evaluator oracle.

One-image COCO and LVIS files are built around imgaug's own annotation. Detections are the GT box
and copies of it shifted sideways to a chosen IoU: a box of width w moved by dx keeps its height, so
IoU = (w − dx) / (w + dx) and dx = w (1 − t) / (1 + t) gives IoU t. AP over the ten thresholds
0.50:0.05:0.95 is then countable by hand, and our evaluators must also equal pycocotools / lvis-api.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from detclip_bench.cli.main import main
from detclip_bench.datasets import open_dataset
from detclip_bench.metrics import CocoEvaluator, LvisEvaluator
from tests.metrics.oracles import assert_same, devil_fixed_ap, lvis_standard, pycocotools_bbox
from tests.reality.artefacts import package_file

# one image and two categories: Fixed AP's "fewer than K detections" warning is expected here
pytestmark = pytest.mark.filterwarnings("ignore:.*fewer than K=:UserWarning")

W, H = 960, 643
THRESHOLDS = np.linspace(0.5, 0.95, 10)


@pytest.fixture(scope="module")
def quokka(tmp_path_factory):
    """COCO and LVIS jsons for imgaug's quokka, with the image copied beside them (tmp dir only)."""
    image = package_file("imgaug", "quokka.jpg")
    notes = json.loads(package_file("imgaug", "quokka_annotations.json").read_text())
    (box,) = notes["bounding_boxes"]
    (polygon,) = notes["polygons"]
    xs = np.array([p["x"] for p in polygon["keypoints"]], dtype=np.float64)
    ys = np.array([p["y"] for p in polygon["keypoints"]], dtype=np.float64)
    area = 0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))  # shoelace: COCO's "area"
    xywh = [box["x1"], box["y1"], box["x2"] - box["x1"], box["y2"] - box["y1"]]
    root = tmp_path_factory.mktemp("quokka")
    shutil.copyfile(image, root / "quokka.jpg")
    ann = {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "bbox": xywh,
        "area": float(area),
        "segmentation": [np.column_stack([xs, ys]).ravel().tolist()],
        "iscrowd": 0,
        "keypoints": [v for p in notes["keypoints"] for v in (p["x"], p["y"], 2)],
        "num_keypoints": len(notes["keypoints"]),
    }
    coco = {
        "info": {"description": "imgaug 0.4.0 quokka"},
        "licenses": [],
        "images": [{"id": 1, "file_name": "quokka.jpg", "width": W, "height": H}],
        "annotations": [ann],
        "categories": [
            {"id": 1, "name": "quokka", "supercategory": box["label"]},
            {"id": 2, "name": "kangaroo", "supercategory": box["label"]},
        ],
    }
    lvis_image = {
        "id": 1,
        "file_name": "quokka.jpg",
        "coco_url": "http://images.cocodataset.org/val2017/quokka.jpg",
        "width": W,
        "height": H,
        "neg_category_ids": [2],
        "not_exhaustive_category_ids": [],
    }
    lvis_cats = [
        {
            "id": 1,
            "name": "quokka",
            "synset": "quokka.n.01",
            "synonyms": ["quokka"],
            "def": "a small wallaby",
            "frequency": "f",
            "image_count": 1,
            "instance_count": 1,
        },
        {
            "id": 2,
            "name": "kangaroo",
            "synset": "kangaroo.n.01",
            "synonyms": ["kangaroo"],
            "def": "a large leaping marsupial",
            "frequency": "r",
            "image_count": 0,
            "instance_count": 0,
        },
    ]
    lvis_ann = {k: v for k, v in ann.items() if k not in ("iscrowd", "keypoints", "num_keypoints")}
    lvis = {"info": {}, "licenses": [], "images": [lvis_image], "annotations": [lvis_ann], "categories": lvis_cats}
    # the same, with quokka listed as not exhaustively annotated on the image: its unmatched boxes are ignored
    lvis_nel = json.loads(json.dumps(lvis))
    lvis_nel["images"][0]["not_exhaustive_category_ids"] = [1]
    files = {}
    for name, gt in (("coco", coco), ("lvis", lvis), ("lvis_nel", lvis_nel)):
        files[name] = root / f"{name}.json"
        files[name].write_text(json.dumps(gt))
    return {"root": root, "xywh": xywh, "gt": {"coco": coco, "lvis": lvis, "lvis_nel": lvis_nel}, "files": files}


def shifted(xywh, iou: float) -> list[float]:
    """The box moved right by dx = w (1 − t) / (1 + t): IoU with the original is exactly t."""
    x, y, w, h = xywh
    dx = w * (1 - iou) / (1 + iou)
    return [x + dx, y, w, h]


def results(dets) -> list[dict]:
    return [{"image_id": 1, "category_id": c, "bbox": list(map(float, b)), "score": s} for b, s, c in dets]


def our_metrics(gt, protocol: str, res: list[dict]) -> dict:
    ev = (
        CocoEvaluator(gt, max_dets_per_image=None)
        if protocol == "coco"
        else LvisEvaluator(gt, protocol=protocol.removeprefix("lvis-"))
    )
    xywh = np.array([r["bbox"] for r in res], dtype=np.float64)
    ev.update(
        1,
        np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]),
        np.array([r["score"] for r in res]),
        np.array([r["category_id"] for r in res]),
    )
    return ev.compute().metrics


def oracle(gt, protocol: str, res: list[dict]) -> dict:
    if protocol == "coco":
        return pycocotools_bbox(gt, res)[0]
    if protocol == "lvis-standard":
        return lvis_standard(gt, res)[0]
    return devil_fixed_ap(gt, res, 10000)[0]


def test_the_artefact_is_what_we_think(quokka):
    assert quokka["xywh"] == [148.0, 50.0, 402.0, 592.0]
    for iou in (0.62, 0.83):
        a = torch.tensor([[148.0, 50.0, 550.0, 642.0]], dtype=torch.float64)
        x, y, w, h = shifted(quokka["xywh"], iou)
        b = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float64)
        assert box_iou(a, b).item() == pytest.approx(iou, abs=1e-12)
        assert x + w <= W  # still inside the image: nothing is clipped


# (detections as (xywh-maker, score, category)) → (AP, AP50, AP75), counted by hand over the 10 thresholds
CASES = {
    # the GT box itself: matched at every threshold
    "exact": ([(lambda b: b, 0.9, 1)], (1.0, 1.0, 1.0)),
    # IoU 0.62 clears 0.50, 0.55, 0.60 only: AP = 3/10
    "iou-0.62": ([(lambda b: shifted(b, 0.62), 0.9, 1)], (0.3, 1.0, 0.0)),
    # IoU 0.83 clears 0.50 … 0.80: AP = 7/10
    "iou-0.83": ([(lambda b: shifted(b, 0.83), 0.9, 1)], (0.7, 1.0, 1.0)),
    # IoU a hair above / below 0.75: the 0.75 threshold is "IoU >= t" in every tool
    "iou-0.75+": ([(lambda b: shifted(b, 0.75 + 1e-4), 0.9, 1)], (0.6, 1.0, 1.0)),
    "iou-0.75-": ([(lambda b: shifted(b, 0.75 - 1e-4), 0.9, 1)], (0.5, 1.0, 0.0)),
    # the 0.62 box scored above the 0.83 box: t <= 0.60 the first matches (precision 1); t in 0.65 … 0.80 the
    # first is a false positive and the second a hit (precision 1/2 at recall 1); t >= 0.85 nothing matches.
    # AP = (3 × 1 + 4 × 0.5) / 10 = 0.5; AP75 = 0.5
    "two-boxes": ([(lambda b: shifted(b, 0.62), 0.9, 1), (lambda b: shifted(b, 0.83), 0.8, 1)], (0.5, 1.0, 0.5)),
    # a high-scoring "kangaroo" on the quokka: a category without GT, so it changes nothing
    "plus-wrong-class": ([(lambda b: b, 0.95, 2), (lambda b: b, 0.9, 1)], (1.0, 1.0, 1.0)),
}


@pytest.mark.parametrize("protocol", ["coco", "lvis-standard", "lvis-fixed"])
@pytest.mark.parametrize("case", list(CASES))
def test_hand_counted_ap_and_the_oracles(quokka, protocol, case):
    makers, (ap, ap50, ap75) = CASES[case]
    res = results([(make(quokka["xywh"]), score, cat) for make, score, cat in makers])
    gt = quokka["gt"]["coco" if protocol == "coco" else "lvis"]
    ours = our_metrics(gt, protocol, res)
    assert (ours["AP"], ours["AP50"], ours["AP75"]) == pytest.approx((ap, ap50, ap75), abs=1e-9)
    assert_same(ours, oracle(gt, protocol, res))


@pytest.mark.parametrize("protocol", ["lvis-standard", "lvis-fixed"])
def test_not_exhaustive_category_ignores_the_unmatched_box(quokka, protocol):
    """LVIS's not_exhaustive_category_ids: on t in 0.65 … 0.80 the 0.62 box is ignored instead of a false
    positive, so the 0.83 box alone gives precision 1: AP = (3 + 4) / 10 = 0.7 (0.5 when exhaustive)."""
    makers, _ = CASES["two-boxes"]
    res = results([(make(quokka["xywh"]), score, cat) for make, score, cat in makers])
    gt = quokka["gt"]["lvis_nel"]
    ours = our_metrics(gt, protocol, res)
    assert (ours["AP"], ours["AP50"], ours["AP75"]) == pytest.approx((0.7, 1.0, 1.0), abs=1e-9)
    assert_same(ours, oracle(gt, protocol, res))


@pytest.mark.parametrize("protocol", ["coco", "lvis", "lvis-fixed"])
def test_score_cli_on_the_quokka(quokka, protocol, tmp_path, capsys):
    makers, (ap, ap50, ap75) = CASES["two-boxes"]
    res = results([(make(quokka["xywh"]), score, cat) for make, score, cat in makers])
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(res))
    out = tmp_path / "result.json"
    gt = quokka["files"]["coco" if protocol == "coco" else "lvis"]
    assert main(["score", "--gt", str(gt), "--pred", str(pred), "--protocol", protocol, "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert (data["metrics"]["AP"], data["metrics"]["AP50"], data["metrics"]["AP75"]) == pytest.approx((ap, ap50, ap75))
    assert data["num_images"] == 1 and data["num_detections_received"] == 2
    assert "AP=50.00" in capsys.readouterr().out


def test_loaders_decode_the_quokka_at_its_size(quokka):
    for fmt in ("coco", "lvis"):
        ds = open_dataset(quokka["files"][fmt], fmt, image_root=quokka["root"])
        (sample,) = [ds[i] for i in range(len(ds))]
        img = sample.load_image()
        assert img.size == (W, H) and img.mode == "RGB"
        assert (sample.width, sample.height) == (W, H)
        np.testing.assert_allclose(sample.boxes, [[148.0, 50.0, 550.0, 642.0]])
        assert [c.name for c in sample.concepts][int(sample.labels[0])] == "quokka"


@pytest.mark.parametrize("fmt", ["coco", "lvis"])
def test_data_validate_passes_and_catches_a_wrong_size(quokka, fmt, tmp_path, capsys):
    argv = ["data", "validate", str(quokka["files"][fmt]), "--format", fmt, "--option", f"image_root={quokka['root']}"]
    assert main(argv) == 0
    assert "1 records, ok" in capsys.readouterr().out
    # the same file claiming the transposed size: validation decodes the real image and must object
    bad = json.loads(quokka["files"][fmt].read_text())
    bad["images"][0]["width"], bad["images"][0]["height"] = H, W
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    argv[2] = str(tmp_path / "bad.json")
    assert main(argv) == 1
    assert f"but the annotation says {H}x{W}" in capsys.readouterr().out


def test_predict_eval_and_analyze_run_on_the_quokka(quokka, tmp_path, monkeypatch, fo_state):
    """The whole user path on a real photo: `predict` draws and writes COCO results that `score` reads, and a
    suite file over the quokka runs through `eval` into `analyze` (FiftyOne), with the verdicts counted by hand."""
    from PIL import Image

    from detclip_bench.adapters import models
    from detclip_bench.adapters.base import Prediction
    from detclip_bench.cli.main import main

    x, y, w, h = quokka["xywh"]
    far = shifted(quokka["xywh"], 0.3)  # IoU 0.3 with the GT: a false positive at IoU 0.5

    class QuokkaOracle:
        name = "quokka-oracle"

        def identity(self):
            return "quokka-oracle"

        def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
            k = list(prompts).index("quokka")
            boxes = [[x, y, x + w, y + h], [far[0], far[1], far[0] + far[2], far[1] + far[3]]]
            return [Prediction(boxes, [0.9, 0.6], [k, k]) for _ in images]

    monkeypatch.setattr(models, "_FAMILIES", (*models._FAMILIES, "quokkafam"))
    monkeypatch.setitem(models.MODELS._entries, "quokkafam", lambda source, device: QuokkaOracle())
    root, coco = quokka["root"], quokka["files"]["coco"]
    pred = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                "--model",
                "quokkafam:x",
                "--images",
                str(root / "quokka.jpg"),
                "--vocab",
                str(coco),
                "--image-ids-from",
                str(coco),
                "--out",
                str(pred),
            ]
        )
        == 0
    )
    with Image.open(pred / "vis" / "quokka.jpg") as drawn:
        assert drawn.size == (W, H)
    dets = json.loads((pred / "predictions.json").read_text())
    assert sorted(d["score"] for d in dets) == pytest.approx([0.6, 0.9]) and {d["image_id"] for d in dets} == {1}
    assert our_metrics(quokka["gt"]["coco"], "coco", dets)["AP"] == pytest.approx(1.0)

    suite = tmp_path / "quokka_suite.json"
    suite.write_text(
        json.dumps(
            {
                "name": "quokka",
                "version": "1",
                "metrics": ["coco"],
                "members": [
                    {"name": "quokka", "format": "coco", "eval_split": "val", "files": {"val": ["coco.json", "."]}}
                ],
            }
        )
    )
    run = tmp_path / "run"
    assert (
        main(
            [
                "eval",
                "--model",
                "quokkafam:x",
                "--suite",
                str(suite),
                "--data-root",
                str(root),
                "--out",
                str(run),
                "--no-cache",
            ]
        )
        == 0
    )
    assert json.loads((run / "results.json").read_text())["aggregate"]["metrics"]["AP"] == pytest.approx(1.0)
    assert (
        main(
            [
                "analyze",
                "--results",
                str(run),
                "--data-root",
                str(root),
                "--name",
                "t-quokka",
                "--fiftyone-dir",
                str(fo_state),
            ]
        )
        == 0
    )
    import fiftyone as fo

    ds = fo.load_dataset("t-quokka")
    assert len(ds) == 1 and (ds.sum("eval_tp"), ds.sum("eval_fp"), ds.sum("eval_fn")) == (1, 1, 0)
