"""Bad-input corpus, loaders: each case writes its own broken file and expects a DataError naming
file and record (or, for known-bad real data, a counted skip reported at the end)."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from detclip_bench.datasets import open_dataset
from tests.datasets.writers import jpeg_bytes, lvis_v1, wds_shard, write_jpeg

from .corpus import Case, assert_data_error, coco_dict, params, png_bytes, write_coco


def _coco(mutate=None, raw=None, **open_kw):
    def build(tmp):
        data = coco_dict()
        if mutate:
            mutate(data)
        path = write_coco(tmp, data, raw=raw(json.dumps(data)) if raw else None)
        return lambda: open_dataset(path, "coco", cache=False, **open_kw)

    return build


def _set(path, value):
    def mutate(d):
        *head, last = path
        obj = d
        for key in head:
            obj = obj[key]
        obj[last] = value

    return mutate


def _first_image(mutate_file):
    def build(tmp):
        path = write_coco(tmp)
        mutate_file(tmp / "a0.jpg")
        return lambda: open_dataset(path, "coco", cache=False)[0].load_image()

    return build


def _lvis(mutate):
    def build(tmp):
        path = lvis_v1(tmp)
        data = json.loads(path.read_text())
        mutate(data)
        path.write_text(json.dumps(data))
        return lambda: open_dataset(path, "lvis", cache=False)[0]

    return build


def _tsv(text, **kw):
    def build(tmp):
        path = tmp / "captions.tsv"
        path.write_text(text)
        return lambda: list(open_dataset(path, "cc-tsv", **kw))

    return build


def _tar(members: list[tuple[str, bytes]]):
    def build(tmp):
        (tmp / "shards").mkdir()
        with tarfile.open(tmp / "shards" / "00000.tar", "w") as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return lambda: [s.load_image() for s in open_dataset(tmp / "shards", "img2dataset-wds")]

    return build


def _truncated_tar(tmp):
    shard = wds_shard(tmp / "shards" / "00000.tar", [("000", jpeg_bytes(), "a dog"), ("001", jpeg_bytes(), "a cat")])
    shard.write_bytes(shard.read_bytes()[:1500])
    return lambda: list(open_dataset(tmp / "shards", "img2dataset-wds"))


def _odvg_bad_line(tmp):
    good = {"filename": "a.jpg", "height": 32, "width": 48, "grounding": {"caption": "a dog", "regions": []}}
    (tmp / "train.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(good)[:30] + "\n")
    return lambda: open_dataset(tmp / "train.jsonl", "odvg")[1]


ERRORS = [
    Case("coco_truncated_json", _coco(raw=lambda s: s[: len(s) // 2]), ("ann.json", "malformed JSON", "line 1")),
    Case(
        "coco_nan_literal_in_bbox",
        _coco(raw=lambda s: s.replace("[1.0, 1.0, 10.0", "[1.0, NaN, 10.0", 1)),
        ("ann.json", "malformed JSON"),
    ),
    Case(
        "coco_wrong_top_level_keys",
        _coco(raw=lambda s: json.dumps({"imgs": [], "anns": []})),
        ("ann.json: not a COCO-style json", "needs 'images' and 'annotations'"),
    ),
    Case("coco_top_level_list", _coco(raw=lambda s: "[1, 2, 3]"), ("ann.json", "not a COCO-style json")),
    Case(
        "coco_unknown_category_id",
        _coco(_set(["annotations", 1, "category_id"], 9)),
        ("ann.json", "annotation 2", "unknown category_id 9"),
    ),
    Case("coco_duplicate_image_id", _coco(_set(["images", 1, "id"], 1)), ("ann.json", "image 1", "duplicate image id")),
    Case(
        "coco_duplicate_annotation_id",
        _coco(_set(["annotations", 1, "id"], 1)),
        ("ann.json", "annotation 1", "duplicate annotation id"),
    ),
    Case(
        "coco_duplicate_category_id",
        _coco(lambda d: d["categories"].append({"id": 1, "name": "again"})),
        ("ann.json", "category 1", "duplicate category id"),
    ),
    Case(
        "coco_category_without_id",
        _coco(lambda d: d["categories"].append({"name": "no id"})),
        ("ann.json", "category #1", "malformed record"),
    ),
    Case(
        "coco_bbox_with_a_string",
        _coco(_set(["annotations", 1, "bbox"], [1, "a", 3, 4])),
        ("ann.json", "annotation 2", "bbox must be 4 numbers"),
    ),
    Case(
        "coco_bbox_three_numbers",
        _coco(_set(["annotations", 0, "bbox"], [1, 2, 3])),
        ("ann.json", "annotation 1", "expected 4"),
    ),
    Case(
        "coco_annotation_on_missing_image",
        _coco(_set(["annotations", 1, "image_id"], 77)),
        ("ann.json", "annotation 2", "image_id 77 is not in 'images'"),
    ),
    Case("coco_image_zero_width", _coco(_set(["images", 1, "width"], 0)), ("ann.json", "image 2", "must be positive")),
    Case(
        "coco_image_without_file_name",
        _coco(_set(["images", 0, "file_name"], "")),
        ("ann.json", "image 1", "no file name"),
    ),
    Case("coco_unknown_loader_option", _coco(colour="red"), ("ann.json", "no option 'colour'", "image_root")),
    Case(
        "lvis_neg_category_ids_not_a_list",
        _lvis(_set(["images", 1, "neg_category_ids"], "3")),
        ("lvis_v1_val.json", "image 2", "neg_category_ids"),
    ),
    Case(
        "lvis_image_without_coco_url",
        _lvis(lambda d: d["images"][0].pop("coco_url")),
        ("lvis_v1_val.json", "image 1", "coco_url"),
    ),
    Case(
        "jpeg_corrupt_bytes",
        _first_image(lambda p: p.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 3)),
        ("a0.jpg", "record 1", "corrupt or unreadable image"),
    ),
    Case(
        "jpeg_truncated",
        _first_image(lambda p: p.write_bytes(p.read_bytes()[:-300])),
        ("a0.jpg", "record 1", "corrupt or unreadable image"),
    ),
    Case(
        "image_missing_without_disk_check",
        lambda tmp: (
            lambda path=write_coco(tmp, images=False): open_dataset(path, "coco", cache=False, check_images=False)[
                0
            ].load_image()
        ),
        ("a0.jpg", "record 1", "cannot read image"),
    ),
    Case(
        "tsv_swapped_columns",
        _tsv("http://x.org/1.jpg\ta dog\nhttp://x.org/2.jpg\ta cat\n", columns="caption,url"),
        ("captions.tsv", "line 1", "wrong column order"),
    ),
    Case(
        "tsv_columns_disagree_between_rows",
        _tsv("a dog\thttp://x.org/1.jpg\nhttp://x.org/2.jpg\ta cat\n"),
        ("captions.tsv", "lines 1-2", "cannot tell which column"),
    ),
    Case(
        "tsv_three_columns",
        _tsv("a dog\thttp://x.org/1.jpg\nhttp://x.org/2.jpg\ta cat\textra\n", columns="caption,url"),
        ("captions.tsv", "line 2", "found 3"),
    ),
    Case(
        "tsv_unknown_format_name",
        lambda tmp: lambda: open_dataset(tmp, "cc-tsv-v9"),
        ("unknown dataset format 'cc-tsv-v9'", "known: "),
    ),
    Case(
        "wds_tar_is_garbage",
        lambda tmp: (
            (tmp / "shards").mkdir(),
            (tmp / "shards" / "00000.tar").write_bytes(b"not a tar" * 200),
            lambda: list(open_dataset(tmp / "shards", "img2dataset-wds")),
        )[-1],
        ("00000.tar", "unreadable webdataset shard"),
    ),
    Case("wds_tar_truncated", _truncated_tar, ("00000.tar", "unreadable webdataset shard")),
    Case(
        "wds_corrupt_jpeg_member",
        _tar([("k7.jpg", b"\xff\xd8garbage"), ("k7.txt", b"a dog")]),
        ("00000.tar", "record k7", "corrupt or unreadable image"),
    ),
    Case(
        "wds_data_root_missing",
        lambda tmp: lambda: open_dataset(tmp / "nowhere", "img2dataset-wds"),
        ("nowhere", "no such file or folder"),
    ),
    Case("wds_data_root_empty", lambda tmp: lambda: open_dataset(tmp, "img2dataset-wds"), ("no *.tar shards",)),
    Case("odvg_truncated_line", _odvg_bad_line, ("train.jsonl", "line 2", "malformed JSON")),
]


@pytest.mark.parametrize("case", params(ERRORS))
def test_bad_input_is_a_data_error_naming_file_and_record(tmp_path, case):
    assert_data_error(case.build(tmp_path), *case.needles)


def test_zero_negative_boxes_are_counted_skips_named_by_annotation(tmp_path):
    data = coco_dict(3)
    data["annotations"][0]["bbox"] = [1.0, 1.0, 0.0, 5.0]
    data["annotations"][2]["bbox"] = [1.0, 1.0, -3.0, 5.0]
    ds = open_dataset(write_coco(tmp_path, data), "coco", cache=False)
    assert [len(ds[i].boxes) for i in range(3)] == [0, 1, 0]
    assert ds.skips.counts["box with w or h <= 0"] == 2
    assert any("annotation 1" in e and "ann.json" in e for e in ds.skips.examples)
    assert any("annotation 3" in e for e in ds.skips.examples)
    assert "skipped 2 records" in ds.skips.report()


def test_missing_image_is_a_counted_skip_naming_the_image(tmp_path):
    path = write_coco(tmp_path, coco_dict(3))
    (tmp_path / "a1.jpg").unlink()
    ds = open_dataset(path, "coco", cache=False)
    assert [s.record_id for s in ds] == ["1", "3"]
    assert ds.skips.counts == {"image file missing on disk": 1}
    assert "image 2" in ds.skips.examples[0] and "a1.jpg" in ds.skips.examples[0]


def test_unreadable_image_root_skips_every_image_and_says_so(tmp_path):
    """An image root that cannot be listed (here: a file) is not a crash and not silent: every image is
    a counted skip naming its path. (chmod 000 would do the same as a normal user; tests may run as root.)"""
    path = write_coco(tmp_path / "ann", coco_dict(2), images=False)
    (tmp_path / "root_is_a_file").write_text("x")
    ds = open_dataset(path, "coco", cache=False, image_root=tmp_path / "root_is_a_file")
    assert len(ds) == 0 and ds.skips.total == 2
    assert "root_is_a_file" in ds.skips.examples[0] and "image 1" in ds.skips.examples[0]


def test_png_disguised_as_jpeg_decodes_by_content(tmp_path):
    """Not an error: the bytes are a valid image, PIL sniffs the format, pixels are right (a real
    corpus has such files; rejecting them would lose data)."""
    path = write_coco(tmp_path)
    (tmp_path / "a0.jpg").write_bytes(png_bytes(color=(10, 200, 30)))
    img = open_dataset(path, "coco", cache=False)[0].load_image()
    assert img.size == (48, 32) and img.getpixel((5, 5)) == (10, 200, 30)


def test_tar_shard_with_a_missing_txt_is_a_counted_skip(tmp_path):
    shard = tmp_path / "shards" / "00000.tar"
    shard.parent.mkdir()
    with tarfile.open(shard, "w") as tar:
        for name, data in [
            ("000.jpg", jpeg_bytes()),
            ("000.txt", b"a dog"),
            ("001.jpg", jpeg_bytes()),
            ("002.jpg", jpeg_bytes()),
            ("002.txt", b"a cat"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ds = open_dataset(tmp_path / "shards", "img2dataset-wds")
    assert [s.record_id for s in ds] == ["000", "002"]
    assert ds.skips.counts == {"no caption (the record has no .txt member)": 1}
    assert "00000.tar: record 001" in ds.skips.examples[0]


def test_empty_caption_in_tsv_is_a_counted_skip(tmp_path):
    path = tmp_path / "cc3m.tsv"
    path.write_text("a dog\thttp://x.org/1.jpg\n \thttp://x.org/2.jpg\na cat\thttp://x.org/3.jpg\n")
    src = open_dataset(path, "cc-tsv", columns="caption,url")
    assert [s.caption for s in src] == ["a dog", "a cat"]
    assert src.skips.counts == {"empty caption": 1} and "line 2" in src.skips.examples[0]


def test_caption_longer_than_the_token_cap_is_truncated_not_an_error():
    """The text tower's cap (``max_text_tokens``) truncates like CLIP: a 200-word caption embeds as its
    first tokens; nothing raises and nothing is dropped."""
    import torch

    from reference_model.detclipv2 import DetCLIPv2
    from tests.reference_model.conftest import tiny_config

    torch.manual_seed(0)
    encoder = DetCLIPv2(tiny_config()).text_encoder.eval()
    cap = encoder.max_tokens
    long_caption, prefix = " ".join(["dog"] * 200), " ".join(["dog"] * (cap - 2))  # BOS + words + EOS
    with torch.no_grad():
        np.testing.assert_allclose(encoder([long_caption]).numpy(), encoder([prefix]).numpy(), rtol=1e-5, atol=1e-6)
    ids = encoder.tokenizer([long_caption], truncation=True, max_length=cap)["input_ids"][0]
    assert len(ids) == cap


def test_image_written_by_writer_is_valid(tmp_path):
    """Guard for the corpus itself: the untouched inputs load, so every failure above is the mutation's."""
    ds = open_dataset(write_coco(tmp_path), "coco", cache=False)
    assert len(ds) == 2 and ds[0].load_image().size == (48, 32)
    assert isinstance(Image.open(write_jpeg(tmp_path / "x.jpg")), Image.Image)
