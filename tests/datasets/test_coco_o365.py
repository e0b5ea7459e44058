import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO

from detclip_bench import DataError
from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.coco import CocoDetection, Objects365, clean_o365_name
from tests.datasets.writers import o365_v2, write_jpeg, write_json


def test_o365_v2_paths_names_flags_and_missing_images(tmp_path):
    missing = "patch0/objects365_v1_00000002.jpg"
    ann = o365_v2(tmp_path, n_images=4, missing=(missing,))
    ds = open_dataset(ann, "o365")
    assert ds.image_root == tmp_path / "train"
    assert len(ds) == 3 and ds.skips.counts["image file missing on disk"] == 1
    s = ds[0]
    assert s.record_id == "1" and s.image.path == str(tmp_path / "train" / "patch1" / "objects365_v1_00000001.jpg")
    assert s.load_image().size == (48, 32)
    np.testing.assert_allclose(s.boxes, [[2, 3, 12, 15], [20.5, 4, 28.5, 12]])
    assert [c.key for c in s.box_concepts] == ["Person", "Cabinet/shelf"]
    assert [c.name for c in s.box_concepts] == ["Person", "Cabinet"]
    assert s.meta["isfake"].tolist() == [1, 0] and s.meta["isreflected"].tolist() == [0, 1]
    vocab = {c.key: c.name for c in ds.vocabulary()}
    assert vocab == {
        "Person": "Person",
        "Cabinet/shelf": "Cabinet",
        "Table Tennis ": "Table Tennis",
        "Moniter/TV": "Monitor",
        "Tape Measur/ Ruler": "Tape Measure",
    }
    assert ds.synonyms()[5] == ("Tape Measure", "Ruler")


def test_o365_known_missing_images_are_a_named_skip(tmp_path):
    images = [{"id": 1, "file_name": "images/v2/patch16/objects365_v2_00908726.jpg", "height": 32, "width": 48}]
    ann = write_json(
        tmp_path / "annotations" / "zhiyuan_objv2_train.json",
        {"images": images, "annotations": [], "categories": [{"id": 1, "name": "Person"}]},
    )
    ds = open_dataset(ann, "o365", image_root=tmp_path)
    assert len(ds) == 0 and ds.skips.counts == {"known-missing O365 v2 image": 1}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Moniter/TV", ("Monitor", "TV")),
        ("Bakset", ("Basket",)),
        ("Hotair ballon", ("Hot-air balloon",)),
        ("Dinning Table", ("Dining Table",)),
        ("Table Teniis paddle", ("Table Tennis paddle",)),
        ("Formula 1 ", ("Formula 1",)),
        ("Cigar/Cigarette ", ("Cigar", "Cigarette")),
        ("Meat ball", ("Meatball",)),
        ("Hamimelon", ("Hami melon",)),
        ("hotair balloon", ("hot-air balloon",)),
        ("pine apple", ("pineapple",)),
        ("tissue ", ("tissue",)),
        ("Noddles", ("Noddles",)),
        ("Other Shoes", ("Other Shoes",)),
    ],
)
def test_o365_name_cleaning(raw, clean):
    assert clean_o365_name(raw) == clean


def test_index_matches_pycocotools_and_is_cached_then_invalidated(tmp_path):
    ann = o365_v2(tmp_path, n_images=6)
    ds = Objects365(ann)
    cache = ann.with_name(ann.name + ".index.npz")
    assert cache.is_file()
    coco = COCO(str(ann))
    for n in range(len(ds)):
        s = ds[n]
        gt = coco.loadAnns(coco.getAnnIds(imgIds=[int(s.record_id)]))
        expect = np.array(
            [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in gt],
            np.float32,
        )
        np.testing.assert_allclose(s.boxes, expect)
        assert [c.category_id for c in s.box_concepts] == [a["category_id"] for a in gt]
    # a changed json (new size/mtime) must not be served from the stale cache
    data = json.loads(ann.read_text())
    data["annotations"] = data["annotations"][:2]
    ann.write_text(json.dumps(data))
    os.utime(ann, ns=(1, 1))
    assert sum(len(s.boxes) for s in Objects365(ann)) == 2


def test_generic_coco_uses_same_path_and_json_folder_as_root(tmp_path):
    write_jpeg(tmp_path / "a.jpg")
    ann = write_json(
        tmp_path / "instances.json",
        {
            "images": [{"id": 7, "file_name": "a.jpg", "width": 48, "height": 32}],
            "annotations": [
                {"id": 1, "image_id": 7, "category_id": 18, "bbox": [0, 0, 5, 5], "iscrowd": 1, "area": 25}
            ],
            "categories": [{"id": 18, "name": "dog"}],
        },
    )
    ds = open_dataset(ann)
    assert isinstance(ds, CocoDetection) and ds.format_name == "coco"
    s = ds[0]
    assert s.concepts[0].name == "dog" and s.meta["iscrowd"].tolist() == [1]


def _coco(tmp_path, images=None, anns=None, cats=None):
    write_jpeg(tmp_path / "a.jpg")
    return write_json(
        tmp_path / "x.json",
        {
            "images": images if images is not None else [{"id": 1, "file_name": "a.jpg", "width": 48, "height": 32}],
            "annotations": anns if anns is not None else [],
            "categories": cats if cats is not None else [{"id": 1, "name": "dog"}],
        },
    )


@pytest.mark.parametrize(
    ("images", "anns", "record", "message"),
    [
        ([{"id": 1, "file_name": "a.jpg", "width": 48, "height": 32}] * 2, [], "image 1", "duplicate image id"),
        (
            None,
            [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}] * 2,
            "annotation 5",
            "duplicate annotation",
        ),
        (
            None,
            [{"id": 5, "image_id": 1, "category_id": 99, "bbox": [0, 0, 1, 1]}],
            "annotation 5",
            "unknown category_id 99",
        ),
        (
            None,
            [{"id": 5, "image_id": 42, "category_id": 1, "bbox": [0, 0, 1, 1]}],
            "annotation 5",
            "image_id 42 is not",
        ),
        (None, [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}], "annotation 5", "expected 4"),
        ([{"id": 1, "file_name": "a.jpg", "width": 0, "height": 32}], [], "image 1", "width/height must be positive"),
        ([{"id": 1, "file_name": "a.jpg", "height": 32}], [], "image 1", "malformed record"),
    ],
)
def test_self_contradictory_json_is_a_named_error(tmp_path, images, anns, record, message):
    ann = _coco(tmp_path, images, anns)
    with pytest.raises(DataError, match=message) as err:
        CocoDetection(ann, cache=False)
    assert err.value.path == str(ann) and err.value.record == record


def test_truncated_and_malformed_json(tmp_path):
    ann = _coco(tmp_path)
    ann.write_text(ann.read_text()[:-10])
    with pytest.raises(DataError, match="malformed JSON") as err:
        CocoDetection(ann)
    assert err.value.path == str(ann)
    ann.write_text('{"images": 3}')
    with pytest.raises(DataError, match="not a COCO-style json"):
        CocoDetection(ann)


def test_bad_boxes_are_counted_skips_and_clipped(tmp_path):
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 5]},  # w = 0
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [5, 5, 4, -2]},  # h < 0
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [60, 40, 5, 5]},  # wholly outside 48x32
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [40, 20, 20, 20]},  # partly outside → clipped
        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [-0.5, 1, 10, 10]},  # within tolerance
    ]
    ds = CocoDetection(_coco(tmp_path, anns=anns))
    s = ds[0]
    assert s.meta["annotation_ids"].tolist() == [4, 5]
    np.testing.assert_allclose(s.boxes, [[40, 20, 48, 32], [0, 1, 9.5, 11]])
    assert ds.skips.counts == {
        "box with w or h <= 0": 2,
        "box outside the image": 1,
        "box partly outside the image (clipped)": 1,
    }


def test_corrupt_jpeg_is_a_named_error_on_decode(tmp_path):
    ann = _coco(tmp_path)
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    s = CocoDetection(ann)[0]
    with pytest.raises(DataError, match="corrupt or unreadable image") as err:
        s.load_image()
    assert err.value.path.endswith("a.jpg") and err.value.record == "1"
