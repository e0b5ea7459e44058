import json

import numpy as np
import pytest

from detclip_bench import DataError, DataKind
from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.mdetr import MdetrGrounding
from detclip_bench.datasets.odvg import OdvgJsonl
from tests.datasets.writers import mdetr_flickr, mdetr_mixed, write_jpeg, write_json


def test_mdetr_mixed_phrases_spans_roots_and_dropped_images(tmp_path):
    ann = mdetr_mixed(tmp_path)
    ds = open_dataset(ann, "mdetr")
    assert ds.vg_root == tmp_path / "gqa" / "images" and ds.coco_root == tmp_path / "coco" / "train2014"
    assert len(ds) == 2 and ds.skips.counts == {"box with w or h <= 0": 1, "no valid box": 1}
    s = ds[0]
    assert s.kind is DataKind.GROUNDING and s.caption.startswith("A man holds")
    assert s.image.path == str(tmp_path / "gqa" / "images" / "2345.jpg")
    # phrase = slices joined by a space; unique phrases become concepts, spans unioned
    assert [(c.name, c.spans) for c in s.concepts] == [
        ("A man", ((0, 5),)),
        ("red dog", ((14, 17), (18, 21))),
        ("the man", ((23, 30),)),
    ]
    assert s.labels.tolist() == [0, 1, 2, 0]
    np.testing.assert_allclose(s.boxes[1], [12, 2, 32, 22])  # xywh → xyxy
    for c in s.concepts:
        assert " ".join(s.caption[a:b] for a, b in c.spans) == c.name
    coco_sample = ds[1]
    assert coco_sample.image.path == str(tmp_path / "coco" / "train2014" / "COCO_train2014_000000000009.jpg")
    assert coco_sample.meta["data_source"] == "coco"


def test_mdetr_roots_are_configurable(tmp_path):
    ann = mdetr_mixed(tmp_path)
    ds = MdetrGrounding(ann, vg_root=tmp_path / "elsewhere", check_images=False)
    assert ds[0].image.path == str(tmp_path / "elsewhere" / "2345.jpg")


def test_mdetr_flickr(tmp_path):
    ds = open_dataset(mdetr_flickr(tmp_path))  # format detected from the name
    assert ds.format_name == "mdetr" and ds.image_root == tmp_path / "flickr30k_images"
    s = ds[0]
    assert [c.name for c in s.concepts] == ["A man", "dog"] and s.labels.tolist() == [0, 1]
    assert ds.vocabulary() == ()  # the json's single "object" category is a placeholder
    assert s.load_image().size == (48, 32)


def test_mdetr_bad_captions_and_spans(tmp_path):
    ann = mdetr_flickr(tmp_path)
    data = json.loads(ann.read_text())
    data["annotations"][1]["tokens_positive"] = [[14, 99]]
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match="outside the caption") as err:
        MdetrGrounding(ann)[0]
    assert err.value.record == "image 0 annotation 1"
    data["images"][0]["caption"] = ""
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match="empty caption"):
        MdetrGrounding(ann)
    data["images"][0]["caption"] = "A man holds a dog ."
    data["annotations"][0]["tokens_positive"] = []
    ann.write_text(json.dumps(data))
    assert MdetrGrounding(ann).skips.counts == {"box without tokens_positive": 1}


def _jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_odvg_detection_with_label_map(tmp_path):
    write_jpeg(tmp_path / "a.jpg")
    write_json(tmp_path / "o365_label_map.json", {"0": "person", "1": "Table Tennis "})
    p = _jsonl(
        tmp_path / "o365_od.json",
        [
            {
                "filename": "a.jpg",
                "height": 32,
                "width": 48,
                "detection": {
                    "instances": [
                        {"bbox": [1, 2, 11, 12], "label": 1, "category": "Table Tennis "},
                        {"bbox": [5, 5, 5, 9], "label": 0, "category": "person"},
                    ]
                },
            },
            {
                "filename": "a.jpg",
                "height": 32,
                "width": 48,
                "detection": {"instances": [{"bbox": [0, 0, 4, 4], "label": 7, "category": "ghost"}]},
            },
        ],
    )
    ds = open_dataset(p)
    assert isinstance(ds, OdvgJsonl) and ds.kind is DataKind.DETECTION and len(ds) == 2
    s = ds[0]
    assert [(c.name, c.key) for c in s.concepts] == [("Table Tennis", "Table Tennis ")]
    np.testing.assert_allclose(s.boxes, [[1, 2, 11, 12]])
    s0 = ds[0]  # re-reading does not re-count the skip
    assert ds.skips.counts == {"box with w or h <= 0": 1} and len(s0.boxes) == 1
    with pytest.raises(DataError, match="label 7 is not in the label_map") as err:
        ds[1]
    assert err.value.record == "line 2"


def test_odvg_grounding_and_mmdet_variant(tmp_path):
    cap = "two dogs and a cat"
    p = _jsonl(
        tmp_path / "goldg_vg.json",
        [
            {
                "filename": "a.jpg",
                "height": 32,
                "width": 48,
                "grounding": {"caption": cap, "regions": [{"bbox": [1, 1, 10, 10], "phrase": "a cat"}]},
            },
            {
                "filename": "a.jpg",
                "height": 32,
                "width": 48,
                "grounding": {
                    "caption": cap,
                    "regions": [
                        {"bbox": [[1, 1, 10, 10], [12, 1, 20, 10]], "phrase": "two dogs", "tokens_positive": [[0, 8]]}
                    ],
                },
            },
            "not json at all",
            {"filename": "a.jpg", "height": 32, "width": 48, "grounding": {"caption": " ", "regions": []}},
        ],
    )
    lines = p.read_text().splitlines()
    lines[2] = "{broken"
    p.write_text("\n".join(lines) + "\n")
    ds = OdvgJsonl(p)
    assert ds.kind is DataKind.GROUNDING and len(ds) == 4
    assert [(c.name, c.spans) for c in ds[0].concepts] == [("a cat", ((13, 18),))]
    s = ds[1]
    assert [(c.name, c.spans) for c in s.concepts] == [("two dogs", ((0, 8),))] and s.labels.tolist() == [0, 0]
    with pytest.raises(DataError, match="malformed JSON") as err:
        ds[2]
    assert err.value.record == "line 3"
    with pytest.raises(DataError, match="empty caption"):
        ds[3]
