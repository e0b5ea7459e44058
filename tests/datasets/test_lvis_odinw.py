import numpy as np
import pytest

from detclip_bench import DataError
from detclip_bench.compat import import_lvis
from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.lvis import LvisV1
from detclip_bench.datasets.odinw import ODINW13, ODINW13_BY_NAME, RoboflowCoco
from tests.datasets.writers import lvis_v1, roboflow_split, write_json


def test_lvis_paths_from_coco_url_meta_and_definitions(tmp_path):
    ann = lvis_v1(tmp_path)
    ds = open_dataset(ann, "lvis")
    assert isinstance(ds, LvisV1) and ds.image_root == tmp_path / "coco"
    by_id = {s.record_id: s for s in ds}
    a, b = by_id["1"], by_id["2"]
    assert a.image.path == str(tmp_path / "coco" / "val2017" / "000000000001.jpg")
    assert b.image.path == str(tmp_path / "coco" / "train2017" / "000000000002.jpg")
    assert a.meta["neg_category_ids"].tolist() == [2] and a.meta["not_exhaustive_category_ids"].tolist() == []
    assert b.meta["not_exhaustive_category_ids"].tolist() == [1, 3]
    bat = a.concepts[0]
    assert (bat.name, bat.key, bat.definition) == ("bat (animal)", "bat_(animal)", "nocturnal mouselike mammal")
    assert bat.prompt() == "bat (animal), nocturnal mouselike mammal"
    info = ds.category_info()
    assert info[3]["frequency"] == "c" and info[3]["synonyms"] == ["aerosol_can", "spray_can"]
    assert [c.name for c in ds.vocabulary()] == ["bat (animal)", "baseball bat", "aerosol can"]


def test_lvis_boxes_match_the_lvis_api(tmp_path):
    ann = lvis_v1(tmp_path)
    api = import_lvis().LVIS(str(ann))
    for s in LvisV1(ann):
        gt = api.load_anns(api.get_ann_ids(img_ids=[int(s.record_id)]))
        xyxy = [[g["bbox"][0], g["bbox"][1], g["bbox"][0] + g["bbox"][2], g["bbox"][1] + g["bbox"][3]] for g in gt]
        np.testing.assert_allclose(s.boxes, xyxy)
        assert [c.category_id for c in s.box_concepts] == [g["category_id"] for g in gt]


def test_lvis_glip_inserted_file_name_wins(tmp_path):
    ann = lvis_v1(tmp_path)
    import json

    data = json.loads(ann.read_text())
    data["images"][0]["file_name"] = "val2017/000000000001.jpg"
    data["images"][1]["file_name"] = "train2017/000000000002.jpg"
    write_json(ann.with_name("lvis_v1_minival_inserted_image_name.json"), data)
    ds = LvisV1(ann.with_name("lvis_v1_minival_inserted_image_name.json"))
    assert len(ds) == 2 and ds.skips.total == 0


@pytest.mark.parametrize("with_root", [True, False])
def test_roboflow_raw_and_glip_files_give_same_categories(tmp_path, with_root):
    ann = roboflow_split(tmp_path / "train", with_root=with_root)
    ds = open_dataset(tmp_path / "train", "odinw")  # a split folder is accepted too
    assert isinstance(ds, RoboflowCoco) and ds.path == ann
    assert [(c.category_id, c.name) for c in ds.vocabulary()] == [(1, "fish"), (2, "shark")]
    assert [s.concepts[0].name for s in ds] == ["fish", "shark"]


def test_roboflow_root_category_used_by_an_annotation_is_an_error(tmp_path):
    ann = roboflow_split(tmp_path / "train")
    import json

    data = json.loads(ann.read_text())
    data["annotations"][0]["category_id"] = 0
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match="super-category id 0") as err:
        RoboflowCoco(ann)
    assert err.value.record == "annotation 0"


def test_odinw13_manifest_is_glips():
    assert len(ODINW13) == 13
    assert ODINW13_BY_NAME["EgoHands"].val_split == "mini_val"
    assert ODINW13_BY_NAME["VehiclesOpenImages"].val_split == "mini_val"
    assert ODINW13_BY_NAME["PascalVOC"].test_split == "valid" and len(ODINW13_BY_NAME["PascalVOC"].classes) == 20
    assert ODINW13_BY_NAME["Aquarium"].subdir == "Aquarium/Aquarium Combined.v2-raw-1024.coco"
    assert ODINW13_BY_NAME["NorthAmericaMushrooms"].classes == ("CoW", "chanterelle")
    assert ODINW13_BY_NAME["pistols"].flat
    assert sum(len(m.classes) for m in ODINW13) == 5 + 7 + 1 + 1 + 2 + 1 + 20 + 1 + 1 + 1 + 3 + 2 + 5


def test_odinw_member_resolves_splits_with_spaces_mini_val_and_voc_test(tmp_path):
    aq = ODINW13_BY_NAME["Aquarium"]
    for split in ("train", "valid", "test"):
        roboflow_split(tmp_path / aq.subdir / split, classes=aq.classes)
    ds = aq.open(tmp_path, "test")
    assert [c.name for c in ds.vocabulary()] == list(aq.classes)
    ego = ODINW13_BY_NAME["EgoHands"]
    roboflow_split(tmp_path / ego.subdir / "mini_val", with_root=False, classes=("myhand",))
    ann, img = ego.resolve(tmp_path, "val")
    assert ann.parent.name == "mini_val" and img == ann.parent
    # OVERRIDE_CATEGORY: the manifest's name, the file's raw name kept as key
    assert [(c.name, c.key) for c in ego.open(tmp_path, "val").vocabulary()] == [("hand", "myhand")]
    voc = ODINW13_BY_NAME["PascalVOC"]
    roboflow_split(tmp_path / voc.subdir / "valid", classes=voc.classes)
    assert voc.resolve(tmp_path, "test") == voc.resolve(tmp_path, "val")


def test_pistols_flat_layout_and_mmdet_folder_variant(tmp_path):
    pistols = ODINW13_BY_NAME["pistols"]
    base = tmp_path / pistols.subdir
    roboflow_split(base, with_root=False, name="val_annotations_without_background.json", classes=("pistol",))
    ann, img = pistols.resolve(tmp_path, "val")
    assert ann == base / "val_annotations_without_background.json" and img == base
    assert len(pistols.open(tmp_path, "val")) == 2
    roboflow_split(base / "test", with_root=False, classes=("pistol",))
    assert pistols.resolve(tmp_path, "test")[0] == base / "test" / "annotations_without_background.json"


def test_missing_odinw_files_error_lists_what_was_tried(tmp_path):
    with pytest.raises(DataError) as err:
        ODINW13_BY_NAME["pistols"].resolve(tmp_path, "train")
    msg = str(err.value)
    assert "pistols [train]" in msg and "train_annotations_without_background.json" in msg
    assert "train/_annotations.coco.json" in msg
    with pytest.raises(DataError, match="2 categories in the file but 1 expected"):
        roboflow_split(tmp_path / "CottontailRabbits" / "train")
        ODINW13_BY_NAME["CottontailRabbits"].open(tmp_path, "train")
