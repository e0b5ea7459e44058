"""The real tools read the mini world unchanged: pycocotools, lvis-api, webdataset, datasets, csv."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detclip_bench.compat import import_lvis
from detclip_bench.mini_world.odinw import ODINW13


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def test_pycocotools_reads_o365(world):
    from pycocotools.coco import COCO

    root, manifest = world
    with _quiet():
        coco = COCO(str(root / "o365/annotations/zhiyuan_objv2_train.json"))
    assert len(coco.getImgIds()) == manifest["counts"]["o365_train_images"]
    assert len(coco.getAnnIds()) == manifest["counts"]["o365_train_boxes"]
    img = coco.loadImgs(coco.getImgIds()[0])[0]
    assert img["file_name"].startswith("images/v1/patch0/objects365_v1_")
    on_disk = root / "o365/train/patch0" / Path(img["file_name"]).name
    assert Image.open(on_disk).size == (img["width"], img["height"])
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))[0]
    assert {"isfake", "isreflected", "iscrowd", "area", "bbox"} <= set(ann)


def _odinw_jsons(root: Path) -> list[Path]:
    return sorted((root / "odinw").rglob("*.json"))


def test_pycocotools_reads_every_odinw_json_and_background_class_rules(world):
    from pycocotools.coco import COCO

    root, _ = world
    files = _odinw_jsons(root)
    by_member = {m.name: [f for f in files if f"odinw/{m.sub_path}/" in f.as_posix()] for m in ODINW13}
    for m in ODINW13:
        assert by_member[m.name], m.name
        for f in by_member[m.name]:
            with _quiet():
                coco = COCO(str(f))
            cats = coco.loadCats(coco.getCatIds())
            names = [c["name"] for c in sorted(cats, key=lambda c: c["id"])]
            if f.name == "_annotations.coco.json":
                assert names == [m.project, *m.classes] and cats[0]["supercategory"] == "none"
                assert not coco.getAnnIds(catIds=[0])
            else:
                assert names == list(m.classes)
            img_dir = f.parent
            for img in coco.loadImgs(coco.getImgIds()):
                assert (img_dir / img["file_name"]).is_file()


def test_odinw_layout_variants(world):
    root, _ = world
    odinw = root / "odinw"
    assert (odinw / "Aquarium/Aquarium Combined.v2-raw-1024.coco/valid/annotations_without_background.json").is_file()
    for m in ("EgoHands/generic", "VehiclesOpenImages/416x416"):
        mini = json.loads((odinw / m / "mini_val/annotations_without_background.json").read_text())
        valid = json.loads((odinw / m / "valid/annotations_without_background.json").read_text())
        assert 0 < len(mini["images"]) < len(valid["images"])
        assert {i["file_name"] for i in mini["images"]} <= {i["file_name"] for i in valid["images"]}
    assert not (odinw / "PascalVOC/test").exists() and (odinw / "PascalVOC/valid").is_dir()
    flat = odinw / "pistols/export"
    assert sorted(p.name for p in flat.glob("*.json")) == [
        f"{s}_annotations_without_background.json" for s in ("test", "train", "val")
    ]
    assert not [p for p in flat.iterdir() if p.is_dir()]


def _gt_as_predictions(gt_json: dict) -> list[dict]:
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt_json["annotations"]
    ]


@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", ["lvis_v1_val.json", "lvis_v1_minival.json"])
def test_lvis_api_reads_and_gt_scores_ap_one(world, name):
    lvis = import_lvis()
    root, _ = world
    path = root / "lvis" / name
    doc = json.loads(path.read_text())
    gt = lvis.LVIS(str(path))
    assert len(gt.get_img_ids()) == len(doc["images"])
    for img in doc["images"]:
        assert "file_name" not in img
        split, fname = img["coco_url"].split("/")[-2:]
        assert Image.open(root / "coco" / split / fname).size == (img["width"], img["height"])
    for ann in doc["annotations"]:
        assert "iscrowd" not in ann and len(ann["segmentation"][0]) == 8
    results = lvis.LVISResults(gt, _gt_as_predictions(doc))
    ev = lvis.LVISEval(gt, results, iou_type="bbox")
    with _quiet():
        ev.run()
    assert ev.get_results()["AP"] == pytest.approx(1.0)


def test_lvis_minival_is_the_val2017_subset(world):
    root, _ = world
    val = json.loads((root / "lvis/lvis_v1_val.json").read_text())
    mini = json.loads((root / "lvis/lvis_v1_minival.json").read_text())
    assert {i["id"] for i in mini["images"]} == {i["id"] for i in val["images"] if "/val2017/" in i["coco_url"]}
    assert any("/train2017/" in i["coco_url"] for i in val["images"])
    assert mini["categories"] == val["categories"]


def test_webdataset_reads_the_shards_and_sidecars_agree(world):
    import pyarrow.parquet as pq
    import webdataset as wds

    root, manifest = world
    tars = sorted((root / "cc/wds").glob("*.tar"))
    samples = list(wds.WebDataset([str(t) for t in tars], shardshuffle=False).decode("pil"))
    assert len(samples) == manifest["counts"]["cc_wds_samples"] > 0
    sidecar = pq.read_table(root / "cc/wds/00000.parquet").to_pylist()
    ok = {r["key"]: r for r in sidecar if r["status"] == "success"}
    assert len(ok) == len(samples) and len(sidecar) == manifest["counts"]["cc3m_rows"]
    stats = json.loads((root / "cc/wds/00000_stats.json").read_text())
    assert stats["count"] == len(sidecar) and stats["successes"] == len(ok)
    for s in samples:
        key = s["__key__"]
        assert len(key) == 9 and key.isdigit()
        assert s["txt"] == ok[key]["caption"] == s["json"]["caption"]
        assert s["jpg"].size == (s["json"]["width"], s["json"]["height"])


def test_datasets_reads_the_parquet_shards(world):
    from datasets import load_dataset

    root, manifest = world
    files = sorted(str(p) for p in (root / "cc/parquet").glob("*.parquet"))
    ds = load_dataset("parquet", data_files=files, split="train", cache_dir=str(root / ".hf_cache"))
    assert len(ds) == manifest["counts"]["cc12m_rows"]
    assert {"url", "caption", "key", "status", "txt", "jpg", "sha256"} <= set(ds.column_names)
    ok = [r for r in ds if r["status"] == "success"]
    assert len(ok) == manifest["counts"]["cc_parquet_images"]
    for r in ds:
        if r["status"] != "success":
            assert r["jpg"] is None and r["error_message"]
    img = Image.open(io.BytesIO(ok[0]["jpg"]))
    assert img.size == (ok[0]["width"], ok[0]["height"])


def test_cc_tsv_column_orders(world):
    root, manifest = world
    with open(root / "cc/cc3m.tsv", newline="") as fh:
        rows3 = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    with open(root / "cc/cc12m.tsv", newline="") as fh:
        rows12 = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows3) == manifest["counts"]["cc3m_rows"] and len(rows12) == manifest["counts"]["cc12m_rows"]
    assert all(r[1].startswith("https://example.invalid/") and not r[0].startswith("http") for r in rows3)
    assert all(r[0].startswith("https://example.invalid/") and not r[1].startswith("http") for r in rows12)


def test_imagenet_layout(world):
    root, manifest = world
    lines = (root / "imagenet/LOC_synset_mapping.txt").read_text().splitlines()
    wnids = [ln.split(" ", 1)[0] for ln in lines]
    assert wnids == sorted(wnids) and len(wnids) == manifest["counts"]["imagenet_classes"]
    assert sorted(p.name for p in (root / "imagenet/train").iterdir()) == wnids
    for w in wnids:
        assert len(w) == 9 and w[0] == "n" and w[1:].isdigit()
        files = sorted((root / "imagenet/train" / w).iterdir())
        assert files and all(f.name.startswith(f"{w}_") and f.suffix == ".JPEG" for f in files)
    assert np.asarray(Image.open(files[0])).shape == (128, 128, 3)
