"""Dataset folders as people have them (ours, GLIP's DATASET/, mmdetection's data/, a download root) are recognised,
reported part by part, validated, and resolved by suites, `eval` and `train`."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from detclip_bench import DataError
from detclip_bench.cli.main import main
from detclip_bench.datasets.layouts import (
    DataRoots,
    parse_data_map,
    recognise,
    render_report,
    resolve_dataset_roots,
    validate_layouts,
)
from detclip_bench.datasets.odinw import ODINW13_BY_NAME
from detclip_bench.suites import get_suite
from tests.datasets.writers import (
    jpeg_bytes,
    lvis_v1,
    mdetr_flickr,
    mdetr_mixed,
    o365_v2,
    roboflow_split,
    wds_shard,
    write_jpeg,
    write_json,
)

AQUARIUM = ODINW13_BY_NAME["Aquarium"]


# ------------------------------------------------------------------------------------------ builders


def _move(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dst))
    return dst


def _goldg_mixed(root: Path) -> Path:
    """mdetr_mixed without its deliberately degenerate box (so a clean layout validates clean)."""
    path = mdetr_mixed(root)
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        ann["bbox"][2] = max(ann["bbox"][2], 5)
    return write_json(path, data)


def _o365_val(root: Path) -> None:
    """annotations/zhiyuan_objv2_val.json + val/patch0/ beside o365_v2's train part."""
    tmp = o365_v2(root / "_val", n_images=2)
    data = json.loads(tmp.read_text())
    write_json(root / "annotations" / "zhiyuan_objv2_val.json", data)
    _move(root / "_val" / "train", root / "val")
    shutil.rmtree(root / "_val")


def _o365_v1(root: Path) -> None:
    """mmdet's objects365v1/: objects365_{train,val}.json at the top, images flat in train/ and val/."""
    for split in ("train", "val"):
        tmp = o365_v2(root / f"_{split}", n_images=2)
        data = json.loads(tmp.read_text())
        for img in data["images"]:
            img["file_name"] = Path(img["file_name"]).name
            write_jpeg(root / split / img["file_name"])
        write_json(root / f"objects365_{split}.json", data)
        shutil.rmtree(root / f"_{split}")


def _lvis(root: Path, dest: str) -> Path:
    """An LVIS json at ``root/dest`` with its COCO images under ``root/coco/{train2017,val2017}``."""
    return _move(lvis_v1(root), root / dest)


def _odinw(odinw_root: Path) -> None:
    for folder in ("train", "valid", "test"):
        roboflow_split(odinw_root / AQUARIUM.subdir / folder, classes=AQUARIUM.classes)


def _cc(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Train_GCC-training.tsv").write_text(
        "a dog on a beach\thttps://x.example/1.jpg\na red car\thttps://x.example/2.jpg\n"
    )
    wds_shard(
        folder / "wds" / "00000.tar", [("000000000", jpeg_bytes(), "a dog"), ("000000001", jpeg_bytes(), "a cat")]
    )
    write_json(folder / "wds" / "00000_stats.json", {"successes": 2, "count": 2})


def ours_root(root: Path) -> Path:
    o365_v2(root / "o365")
    _o365_val(root / "o365")
    _lvis(root, "lvis/lvis_v1_minival.json")
    _goldg_mixed(root / "goldg")
    mdetr_flickr(root / "goldg")
    _odinw(root / "odinw")
    _cc(root / "cc3m")
    return root


def glip_root(root: Path) -> Path:
    """GLIP's DATASET/: coco/annotations/lvis_*.json, mdetr_annotations/, gqa/images, flickr30k/flickr30k_images, odinw/."""
    _lvis(root, "coco/annotations/lvis_v1_minival_inserted_image_name.json")
    _goldg_mixed(root)
    mdetr_flickr(root)
    _move(root / "flickr30k_images", root / "flickr30k" / "flickr30k_images")
    _odinw(root / "odinw")
    (root / "Objects365").mkdir()
    (root / "Objects365" / "train.label.tsv").write_text("0\t[]\n")
    return root


def mmdet_root(root: Path) -> Path:
    """mmdetection's data/: objects365v2/, coco/annotations/lvis_od_val.json, gqa/, flickr30k_entities/, odinw/."""
    o365_v2(root / "objects365v2")
    _o365_val(root / "objects365v2")
    _lvis(root, "coco/annotations/lvis_od_val.json")
    _goldg_mixed(root / "_g")
    _move(
        root / "_g" / "mdetr_annotations" / "final_mixed_train_no_coco.json",
        root / "gqa" / "final_mixed_train_no_coco.json",
    )
    _move(root / "_g" / "gqa" / "images", root / "gqa" / "images")
    _move(root / "_g" / "coco" / "train2014", root / "coco" / "train2014")
    mdetr_flickr(root / "_f")
    _move(
        root / "_f" / "mdetr_annotations" / "final_flickr_separateGT_train.json",
        root / "flickr30k_entities" / "final_flickr_separateGT_train.json",
    )
    _move(root / "_f" / "flickr30k_images", root / "flickr30k_entities" / "flickr30k_images")
    shutil.rmtree(root / "_g")
    shutil.rmtree(root / "_f")
    _odinw(root / "odinw")
    return root


def _by_name(found) -> dict:
    return {f.name: f for f in found}


def _status(found, key: str) -> str:
    return next(p.status for p in found.parts if p.spec.key == key)


# ------------------------------------------------------------------------------------------ recognition


def test_our_layout_every_dataset_and_part(tmp_path):
    found = _by_name(recognise(ours_root(tmp_path)))
    assert set(found) == {"o365", "lvis", "goldg", "odinw", "cc3m"}
    assert {f.layout.name for f in found.values()} <= {"ours", "glip/mmdet", "ours/img2dataset"}
    o365 = found["o365"]
    assert o365.base == tmp_path / "o365" and o365.layout.label == "ours (v2)"
    assert [(p.spec.key, p.status) for p in o365.parts] == [
        ("train", "found"),
        ("val", "found"),
        ("train images", "found"),
        ("val images", "found"),
    ]
    assert o365.part("train images").detail == "2 patch folders"
    lvis = found["lvis"]
    assert lvis.base == tmp_path and _status(lvis, "minival") == "found" and _status(lvis, "val") == "missing"
    assert lvis.path_of("images") == tmp_path / "coco"
    assert _status(found["goldg"], "mixed") == "found" and _status(found["goldg"], "flickr images") == "found"
    odinw = found["odinw"]
    assert _status(odinw, "Aquarium") == "found" and _status(odinw, "EgoHands") == "missing"
    cc = found["cc3m"]
    assert cc.part("captions tsv").paths == (tmp_path / "cc3m" / "Train_GCC-training.tsv",)
    assert cc.part("webdataset shards").paths == (tmp_path / "cc3m" / "wds",)
    assert cc.part("webdataset shards").detail == "1 shards, 1 with _stats.json"
    assert all(not f.problems for f in found.values())


def test_glip_dataset_root(tmp_path):
    found = _by_name(recognise(glip_root(tmp_path)))
    assert set(found) == {"o365", "lvis", "goldg", "odinw"}
    lvis = found["lvis"]
    assert lvis.layout.name == "glip/mmdet" and lvis.base == tmp_path / "coco"
    assert lvis.path_of("minival") == tmp_path / "coco/annotations/lvis_v1_minival_inserted_image_name.json"
    goldg = found["goldg"]
    assert goldg.layout.name == "glip" and goldg.base == tmp_path
    assert goldg.path_of("flickr images") == tmp_path / "flickr30k" / "flickr30k_images"
    # GLIP keeps Objects365 as TSV: recognised, and reported as unreadable
    assert found["o365"].layout.label == "glip (tsv)"
    assert any("GLIP's Objects365 TSV" in p for p in found["o365"].problems)


def test_mmdet_data_root(tmp_path):
    found = _by_name(recognise(mmdet_root(tmp_path)))
    assert found["o365"].layout.label == "mmdet (v2)" and found["o365"].base == tmp_path / "objects365v2"
    assert found["lvis"].path_of("val") == tmp_path / "coco/annotations/lvis_od_val.json"
    goldg = found["goldg"]
    assert goldg.layout.name == "mmdet"
    assert goldg.path_of("mixed") == tmp_path / "gqa/final_mixed_train_no_coco.json"
    assert goldg.path_of("flickr images") == tmp_path / "flickr30k_entities/flickr30k_images"
    assert _status(found["odinw"], "Aquarium") == "found"


def test_a_dataset_folder_itself_and_objects365_v1(tmp_path):
    o365_v2(tmp_path / "Objects365")
    _o365_val(tmp_path / "Objects365")
    (hit,) = recognise(tmp_path / "Objects365")
    assert (hit.name, hit.layout.label, hit.base) == ("o365", "download (v2)", tmp_path / "Objects365")
    _o365_v1(tmp_path / "objects365v1")
    (hit,) = recognise(tmp_path / "objects365v1")
    assert hit.layout.label == "mmdet (v1)" and hit.path_of("train") == tmp_path / "objects365v1/objects365_train.json"
    # our lvis/ folder alone: the coco/ beside it is found
    _lvis(tmp_path, "lvis/lvis_v1_val.json")
    (hit,) = recognise(tmp_path / "lvis")
    assert hit.path_of("val2017") == tmp_path / "lvis" / ".." / "coco" / "val2017"
    _cc(tmp_path / "CC3M")
    assert [f.name for f in recognise(tmp_path / "CC3M")] == ["cc3m"]


def test_a_missing_part_is_named(tmp_path):
    root = ours_root(tmp_path)
    shutil.rmtree(root / "o365" / "val")
    shutil.rmtree(root / "odinw" / AQUARIUM.subdir / "test")
    found = _by_name(recognise(root))
    assert _status(found["o365"], "val images") == "missing"
    assert found["o365"].problems == [
        f"o365: val reads val images, which is missing (looked for {root / 'o365/val'}, {root / 'o365/images/val'})"
    ]
    aquarium = found["odinw"].part("Aquarium")
    assert aquarium.status == "partial" and aquarium.missing == ("test (test)",)
    text = "\n".join(render_report(list(found.values()), root))
    assert "val images" in text and "missing  looked for o365/val, o365/images/val" in text
    assert "partial" in text and "missing test (test)" in text


def test_nothing_known_is_recognised_as_nothing(tmp_path):
    (tmp_path / "notes").mkdir()
    assert recognise(tmp_path) == []
    # a folder of arbitrary shards (no TSV, no _stats.json) is left to format detection
    wds_shard(tmp_path / "shards" / "x-train-000.tar", [("k", b"\xff", "c")])
    assert recognise(tmp_path / "shards") == []


# ------------------------------------------------------------------------------------------ validation, CLI


def test_validate_layouts_checks_every_file_found(tmp_path):
    found = recognise(ours_root(tmp_path))
    reports = validate_layouts(found)
    names = [r.name.split(":")[0] for r in reports]
    assert names == [
        "o365 train",
        "o365 val",
        "lvis minival",
        "goldg mixed",
        "goldg flickr",
        "odinw Aquarium train",
        "odinw Aquarium val",
        "odinw Aquarium test",
        "cc3m captions tsv",
        "cc3m webdataset shards",
    ]
    assert all(not r.problems for r in reports), [r.problems for r in reports]
    assert next(r for r in reports if r.name.startswith("o365 train")).records == 4


def test_cli_validate_data_root_table_exit_codes(tmp_path, capsys):
    root = ours_root(tmp_path)
    assert main(["data", "validate", str(root), "--no-decode"]) == 0
    out = capsys.readouterr().out
    assert f"5 dataset(s) recognised under {root}:" in out
    assert re.search(r"\no365 +ours \(v2\) +train +found +o365/annotations/zhiyuan_objv2_train.json\n", out)
    assert re.search(r"\n +train images +found +o365/train \(2 patch folders\)\n", out)
    assert f"use: --data-root {root}" in out
    assert f"--data-map o365={root / 'o365'},lvis={root},goldg={root / 'goldg'}" in out
    assert "o365 train: " in out and "4 records, ok" in out and "10 dataset(s) checked, 0 problem(s)" in out
    # a needed image folder gone: named as missing, exit 1
    shutil.rmtree(root / "coco" / "val2017")
    assert main(["data", "validate", str(root), "--layout-only"]) == 1
    out = capsys.readouterr().out
    assert "val2017" in out and "missing" in out
    assert "problem: lvis: minival reads val2017, which is missing" in out and "1 problem(s)" in out
    # an annotation problem inside a file found: exit 1, named with its dataset and part
    write_jpeg(root / "coco" / "val2017" / "000000000001.jpg", 30, 30)
    assert main(["data", "validate", str(root), "--layout-only"]) == 0
    capsys.readouterr()
    assert main(["data", "validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "lvis minival: " in out and "image is 30x30 but the annotation says 48x32" in out


def test_cli_validate_a_dataset_folder_and_a_data_map(tmp_path, capsys):
    o365_v2(tmp_path / "Objects365")
    assert main(["data", "validate", str(tmp_path / "Objects365"), "--layout-only"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"o365 +download \(v2\) +train +found", out) and re.search(r"val images +missing", out)
    _lvis(tmp_path / "mnt", "coco/annotations/lvis_v1_minival_inserted_image_name.json")
    argv = ["data", "validate", "--data-map", f"o365={tmp_path / 'Objects365'},lvis={tmp_path / 'mnt' / 'coco'}"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 dataset(s) recognised:" in out and "lvis minival: " in out and "0 problem(s)" in out
    # a folder that is not what the map says
    assert main(["data", "validate", "--data-map", f"lvis={tmp_path / 'Objects365'}"]) == 1
    assert (
        "--data-map lvis: no LVIS v1 (+ COCO 2017 images) here in a known layout; looked for lvis/lvis_v1_minival"
        in capsys.readouterr().err
    )


def test_cli_validate_keeps_files_and_unrecognised_folders_as_before(tmp_path, capsys):
    ann = o365_v2(tmp_path)
    assert main(["data", "validate", str(ann)]) == 0
    assert "zhiyuan_objv2_train.json: 4 records, ok" in capsys.readouterr().out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "readme.txt").write_text("x")
    assert main(["data", "validate", str(tmp_path / "other")]) == 1
    assert "cannot tell the dataset format" in capsys.readouterr().out


def test_parse_data_map():
    assert parse_data_map("o365=/a, lvis=/b") == {"o365": Path("/a"), "lvis": Path("/b")}
    assert parse_data_map(["Objects365=/a", "coco=/c"]) == {"o365": Path("/a"), "coco": Path("/c")}
    assert parse_data_map(None) == {}
    with pytest.raises(DataError, match="unknown dataset 'imagenet22k'"):
        parse_data_map("imagenet22k=/x")
    with pytest.raises(DataError, match="expected NAME=FOLDER"):
        parse_data_map("o365")


# ------------------------------------------------------------------------------------------ suites, eval, train


def _one_member(name: str, member: str):
    suite = get_suite(name)
    return dataclasses.replace(suite, members=tuple(m for m in suite.members if m.name == member), aggregate="mean")


def test_suites_resolve_glip_and_mmdet_roots(tmp_path):
    glip, mmdet = glip_root(tmp_path / "DATASET"), mmdet_root(tmp_path / "data")
    minival = get_suite("lvis-minival")
    minival.check_files(glip)
    (target,) = minival.targets(glip)
    assert target.annotations == glip / "coco/annotations/lvis_v1_minival_inserted_image_name.json"
    assert target.images == glip / "coco"
    lvis_val = get_suite("lvis-val")
    lvis_val.check_files(mmdet)
    assert lvis_val.targets(mmdet)[0].annotations == mmdet / "coco/annotations/lvis_od_val.json"
    odinw = _one_member("odinw13", "odinw13/Aquarium")
    for root in (glip, mmdet):
        odinw.check_files(root, ("train", "val", "test"))
    with pytest.raises(DataError, match=r"lvis/lvis_v1_minival\.json"):  # ours is still what a miss names first
        minival.check_files(tmp_path / "empty")


def test_suites_resolve_through_a_data_map(tmp_path):
    _lvis(tmp_path / "mnt", "coco/annotations/lvis_v1_minival_inserted_image_name.json")
    _odinw(tmp_path / "elsewhere" / "ODinW")
    roots = resolve_dataset_roots(
        tmp_path / "data", f"lvis={tmp_path / 'mnt' / 'coco'},odinw={tmp_path / 'elsewhere' / 'ODinW'}"
    )
    assert isinstance(roots, DataRoots) and roots.mapping()["lvis"] == tmp_path / "mnt" / "coco"
    minival = get_suite("lvis-minival")
    minival.check_files(roots)
    (target,) = minival.targets(roots)
    assert target.annotations == tmp_path / "mnt/coco/annotations/lvis_v1_minival_inserted_image_name.json"
    assert target.images == tmp_path / "mnt" / "coco"
    _one_member("odinw13", "odinw13/Aquarium").check_files(roots)


def test_data_roots_map_readme_paths(tmp_path):
    glip = glip_root(tmp_path / "DATASET")
    _o365_v1(tmp_path / "objects365v1")
    roots = resolve_dataset_roots(glip, f"o365={tmp_path / 'objects365v1'}")
    assert roots / "o365/annotations/zhiyuan_objv2_train.json" == tmp_path / "objects365v1/objects365_train.json"
    assert roots / "o365/train" == tmp_path / "objects365v1" / "train"
    assert (
        roots / "goldg/mdetr_annotations/final_mixed_train_no_coco.json"
        == glip / "mdetr_annotations/final_mixed_train_no_coco.json"
    )
    assert roots / "goldg/gqa/images" == glip / "gqa" / "images"
    assert roots / "goldg/flickr30k_images" == glip / "flickr30k" / "flickr30k_images"
    assert roots / "coco" == glip / "coco"  # written as is, and there
    assert roots / "cc15m" == glip / "cc15m"  # nothing anywhere: the path as written (reported missing later)
    # the README layout wins as written: nothing is remapped
    ours = ours_root(tmp_path / "ours")
    plain = resolve_dataset_roots(ours)
    for rel in (
        "o365/annotations/zhiyuan_objv2_train.json",
        "goldg/gqa/images",
        "cc3m/wds",
        "lvis/lvis_v1_minival.json",
    ):
        assert plain / rel == ours / rel


def test_train_recipe_paths_follow_the_recogniser(tmp_path):
    pytest.importorskip("reference_model")
    from recipes import get_recipe
    from reference_model.train.config import locate_data, with_data_root

    glip = glip_root(tmp_path / "DATASET")
    o365_v2(tmp_path / "o365v2")
    cfg = get_recipe("table1-pretrain-t", "full")
    cfg = with_data_root(locate_data(cfg, str(glip), f"o365={tmp_path / 'o365v2'}"), str(glip))
    paths = {d.name: (d.path, dict(d.options)) for d in cfg.data}
    assert paths["o365"][0] == str(tmp_path / "o365v2/annotations/zhiyuan_objv2_train.json")
    assert paths["goldg"] == (
        str(glip / "mdetr_annotations/final_mixed_train_no_coco.json"),
        {"vg_root": str(glip / "gqa" / "images")},
    )
    assert paths["goldg-flickr"][1] == {"image_root": str(glip / "flickr30k" / "flickr30k_images")}
    assert paths["cc15m"][0] == str(glip / "cc15m")  # not there: anchored as before
    # the README layout: byte-for-byte what with_data_root alone gives
    ours = ours_root(tmp_path / "ours")
    base = get_recipe("table1-pretrain-t", "full")
    assert with_data_root(locate_data(base, str(ours)), str(ours)) == with_data_root(base, str(ours))


# ------------------------------------------------------------------------------------------ one rule per family


def _export(folder: Path, splits=("train", "valid", "test")) -> Path:
    for split in splits:
        roboflow_split(folder / split, classes=("widget", "gadget"))
    return folder


@pytest.mark.parametrize("name", ["widgets.v3i.coco", "Aquarium Combined.v2-raw-1024.coco"])
def test_an_export_root_validates_as_eval_dataset_reads_it(tmp_path, capsys, name):
    from detclip_bench.suites.custom import parse_dataset_spec

    root = _export(tmp_path / name)
    (hit,) = recognise(root)
    assert (hit.name, hit.spec.name, hit.base) == (name, "export", root)
    # the same files `eval --dataset ROOT` scores
    assert {p.spec.key: p.paths[0] for p in hit.parts} == {s: a for s, (a, _) in parse_dataset_spec(str(root)).items()}
    assert main(["data", "validate", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{name} train: " in out and f"{name} val: " in out and f"{name} test: " in out
    assert "3 dataset(s) checked, 0 problem(s)" in out and "--dataset" in out
    # a parent folder holding the export is recognised as its data root
    assert [f.name for f in recognise(tmp_path)] == [name]
    # a bad record in one split: named with its split, exit 1
    broken = root / "valid" / "_annotations.coco.json"
    data = json.loads(broken.read_text())
    data["annotations"][0]["image_id"] = 99
    write_json(broken, data)
    assert main(["data", "validate", str(root)]) == 1
    assert f"{name} val: " in capsys.readouterr().out


def test_a_split_folder_still_validates_alone(tmp_path, capsys):
    root = _export(tmp_path / "widgets.v3i.coco")
    assert recognise(root / "train") == []
    assert main(["data", "validate", str(root / "train")]) == 0
    assert "train: 2 records, ok" in capsys.readouterr().out


def _kaggle_imagenet(folder: Path) -> Path:
    (folder).mkdir(parents=True)
    (folder / "LOC_synset_mapping.txt").write_text("n01440764 tench, Tinca tinca\n")
    cls_loc = folder / "ILSVRC" / "Data" / "CLS-LOC"
    write_jpeg(cls_loc / "train" / "n01440764" / "n01440764_1.JPEG")
    write_jpeg(cls_loc / "val" / "ILSVRC2012_val_00000001.JPEG")
    (folder / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 2 3 4\n"
    )
    return folder


@pytest.mark.parametrize("folder", ["imagenet", "ImageNet"])
def test_a_parent_of_a_kaggle_imagenet_is_a_data_root(tmp_path, capsys, folder):
    base = _kaggle_imagenet(tmp_path / folder)
    (hit,) = recognise(tmp_path)
    assert (hit.name, hit.layout.name, hit.base) == ("imagenet", "kaggle", base)
    assert hit.path_of("val") == base / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    assert [f.base for f in recognise(base)] == [base]  # and the folder itself
    assert main(["data", "validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "imagenet train: " in out and "imagenet val: " in out and "2 dataset(s) checked, 0 problem(s)" in out
    # the README path imagenet/... resolves into it whatever the folder's case
    assert resolve_dataset_roots(tmp_path) / "imagenet/LOC_synset_mapping.txt" == base / "LOC_synset_mapping.txt"


@pytest.mark.parametrize("folder", ["CC", "cc3m", "Cc12M"])
def test_dataset_folder_names_match_ignoring_case(tmp_path, folder):
    _cc(tmp_path / folder)
    (hit,) = recognise(tmp_path)
    assert hit.base == tmp_path / folder and hit.name == folder.lower()
    o365_v2(tmp_path / "OBJECTS365V2")
    assert {f.name: f.layout.label for f in recognise(tmp_path)}["o365"] == "mmdet (v2)"
