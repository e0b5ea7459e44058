"""The piecewise parse of big jsons must give exactly the arrays of a whole-file parse."""

import json

import numpy as np
import pytest

from detclip_bench import DataError
from detclip_bench.datasets.coco import Objects365
from detclip_bench.datasets.coco_index import build
from detclip_bench.datasets.json_chunks import NotChunkable, annotation_pieces
from detclip_bench.datasets.lvis import LvisV1
from detclip_bench.datasets.mdetr import MdetrGrounding
from tests.datasets.writers import lvis_v1, mdetr_mixed, o365_v2


@pytest.mark.parametrize(("writer", "cls"), [(o365_v2, Objects365), (lvis_v1, LvisV1), (mdetr_mixed, MdetrGrounding)])
@pytest.mark.parametrize("chunk_bytes", [1, 150, 1 << 20])
def test_piecewise_equals_whole_file(tmp_path, writer, cls, chunk_bytes):
    path = writer(tmp_path)
    _head, pieces = annotation_pieces(path, chunk_bytes)  # no fallback: the pieces path really runs
    assert sum(len(p) for p in pieces) == len(json.loads(path.read_text())["annotations"])
    whole = build(path, cls.spec, chunk_min=1 << 40)
    pieces = build(path, cls.spec, chunk_bytes=chunk_bytes, chunk_min=0)
    assert whole.keys() == pieces.keys()
    for k in whole:
        np.testing.assert_array_equal(whole[k], pieces[k], err_msg=k)


def test_pieces_really_split_and_nested_objects_fall_back(tmp_path):
    path = o365_v2(tmp_path, n_images=4)
    head, pieces = annotation_pieces(path, chunk_bytes=150)
    sizes = [len(p) for p in pieces]
    assert head["annotations"] == [] and len(head["images"]) == 4
    assert len(sizes) > 2 and sum(sizes) == 8
    data = json.loads(path.read_text())
    for ann in data["annotations"]:  # COCO crowd RLE: a nested object, so a '}' is not always an element end
        ann_items = list(ann.items())
        ann.clear()
        ann.update({"segmentation": {"counts": [1, 2], "size": [32, 48]}, **dict(ann_items)})
    path.write_text(json.dumps(data))
    for chunk_bytes in (1, 40, 150, 333):
        piecewise = build(path, Objects365.spec, chunk_bytes=chunk_bytes, chunk_min=0)
        whole = build(path, Objects365.spec, chunk_min=1 << 40)
        for k in whole:
            np.testing.assert_array_equal(whole[k], piecewise[k], err_msg=k)
    # a cut that lands inside an element is detected (and build() then parses the whole file)
    bad = tmp_path / "nested.json"
    bad.write_text('{"images": [], "annotations": [{"segmentation": {"size": [1, 2]}, "id": 1}]}')
    outcomes = []
    for chunk_bytes in range(1, 60):
        try:
            outcomes.append([p for piece in annotation_pieces(bad, chunk_bytes)[1] for p in piece])
        except NotChunkable:
            outcomes.append("fallback")
    assert "fallback" in outcomes  # some cut lands after the inner '}' and is refused
    assert all(o in ("fallback", [{"segmentation": {"size": [1, 2]}, "id": 1}]) for o in outcomes)
    text = tmp_path / "decoy.json"
    text.write_text('{"info": {"annotations": [{"x": 1}]}, "images": [], "annotations": [{"id": 2}]}')  # nested key
    with pytest.raises(NotChunkable):
        annotation_pieces(text)


def test_piecewise_errors_still_name_the_record(tmp_path):
    path = o365_v2(tmp_path, n_images=4)
    data = json.loads(path.read_text())
    del data["annotations"][5]["category_id"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="malformed record") as err:
        build(path, Objects365.spec, chunk_bytes=100, chunk_min=0)
    assert err.value.record == f"annotation {data['annotations'][5]['id']}"
    path.write_text(path.read_text()[:-30])
    with pytest.raises(DataError, match="malformed JSON"):
        build(path, Objects365.spec, chunk_bytes=100, chunk_min=0)
