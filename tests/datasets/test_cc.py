import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detclip_bench import DataError, DataKind
from detclip_bench.datasets import detect_format, open_dataset
from detclip_bench.datasets.cc_tsv import ConceptualCaptionsTsv
from tests.datasets.writers import jpeg_bytes, wds_shard

CC3M = [
    "a dog on a beach\thttps://a.example/1.jpg",
    "two cats\thttp://b.example/2.jpg",
    "  \thttps://c.example/3.jpg",
    "a red car\thttps://d.example/4.jpg",
]


def test_cc3m_and_cc12m_column_orders_are_detected(tmp_path):
    cc3m = tmp_path / "Train_GCC-training.tsv"
    cc3m.write_text("\n".join(CC3M) + "\n")
    cc12m = tmp_path / "cc12m.tsv"
    cc12m.write_text("\n".join("\t".join(reversed(line.split("\t"))) for line in CC3M) + "\n")
    a, b = open_dataset(cc3m), open_dataset(cc12m)
    assert (a.columns, b.columns) == (("caption", "url"), ("url", "caption"))
    for ds in (a, b):
        samples = list(ds)
        assert [s.caption for s in samples] == ["a dog on a beach", "two cats", "a red car"]
        assert samples[0].meta["url"] == "https://a.example/1.jpg" and samples[0].kind is DataKind.IMAGE_TEXT
        assert [s.record_id for s in samples] == ["line 1", "line 2", "line 4"]
        assert ds.skips.counts == {"empty caption": 1}


def test_tsv_order_unclear_or_contradicted_is_an_error(tmp_path):
    both = tmp_path / "both.tsv"
    both.write_text("https://x/1.jpg\thttps://x/2.jpg\n")
    with pytest.raises(DataError, match="cannot tell which column") as err:
        ConceptualCaptionsTsv(both)
    assert "columns=" in str(err.value)
    neither = tmp_path / "neither.tsv"
    neither.write_text("a dog\ta cat\n")
    with pytest.raises(DataError, match="cannot tell"):
        ConceptualCaptionsTsv(neither)
    # explicit CC12M order on a CC3M file: the first row contradicts it
    cc3m = tmp_path / "cc3m.tsv"
    cc3m.write_text("\n".join(CC3M) + "\n")
    ds = ConceptualCaptionsTsv(cc3m, columns="url,caption")
    with pytest.raises(DataError, match="wrong column order") as err:
        list(ds)
    assert err.value.record == "line 1"
    # detection looks at the first rows only; a later flipped row is caught while reading
    flipped = tmp_path / "flipped.tsv"
    flipped.write_text("\n".join([*CC3M[:2], "https://e.example/5.jpg\tswapped row"]) + "\n")
    with pytest.raises(DataError, match="wrong column order") as err:
        list(ConceptualCaptionsTsv(flipped, sniff_rows=2))
    assert err.value.record == "line 3"
    bad = tmp_path / "bad.tsv"
    bad.write_text("only one column\n")
    with pytest.raises(DataError, match="expected 2 tab-separated columns"):
        ConceptualCaptionsTsv(bad)


def test_tsv_img2dataset_header_is_honoured(tmp_path):
    p = tmp_path / "cc3m_with_header.tsv"
    p.write_text("caption\turl\n" + "\n".join(CC3M[:2]) + "\n")
    assert [s.caption for s in ConceptualCaptionsTsv(p)] == ["a dog on a beach", "two cats"]


def _wds(tmp_path):
    folder = tmp_path / "wds"
    wds_shard(
        folder / "00000.tar",
        [
            ("000000000", jpeg_bytes(), "a dog"),
            ("000000001", None, "lost image"),
            ("000000002", jpeg_bytes(color=(0, 255, 0)), "  "),
        ],
    )
    wds_shard(folder / "00001.tar", [("000010000", jpeg_bytes(64, 40), "a cat")])
    (folder / "00000.parquet").write_bytes(b"sidecar")  # img2dataset writes these next to the tars
    (folder / "00000_stats.json").write_text("{}")
    return folder


def test_img2dataset_webdataset_tars(tmp_path):
    folder = _wds(tmp_path)
    assert detect_format(folder) == "img2dataset-wds"
    ds = open_dataset(folder)
    samples = list(ds)
    assert [(s.record_id, s.caption) for s in samples] == [("000000000", "a dog"), ("000010000", "a cat")]
    assert samples[1].load_image().size == (64, 40) and samples[0].meta["status"] == "success"
    assert samples[0].load_image(draft=(16, 16)).size[0] < 48  # JPEG draft decoding kicks in
    assert ds.skips.counts == {"no image bytes (failed download)": 1, "empty caption": 1}


def test_corrupt_jpeg_in_a_shard_names_shard_and_key(tmp_path):
    wds_shard(tmp_path / "00000.tar", [("000000007", b"\xff\xd8\xff\xe0 not a jpeg", "a dog")])
    sample = next(iter(open_dataset(tmp_path, "img2dataset-wds")))
    with pytest.raises(DataError, match="corrupt or unreadable image") as err:
        sample.load_image()
    assert err.value.path == str(tmp_path / "00000.tar") and err.value.record == "000000007"


def test_corrupt_tar_is_a_named_error(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "00000.tar").write_bytes(b"this is not a tar" * 100)
    with pytest.raises(DataError, match="unreadable webdataset shard") as err:
        list(open_dataset(folder, "img2dataset-wds"))
    assert err.value.path.endswith("00000.tar")


def _parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_img2dataset_parquet_skips_failed_downloads(tmp_path):
    base = {"url": "https://x/1.jpg", "error_message": None, "width": 48, "height": 32}
    _parquet(
        tmp_path / "pq" / "00000.parquet",
        [
            {**base, "key": "000000000", "caption": "a dog", "txt": "a dog", "status": "success", "jpg": jpeg_bytes()},
            {**base, "key": "000000001", "caption": "gone", "txt": "gone", "status": "failed_to_download", "jpg": None},
            {**base, "key": "000000002", "caption": "null", "txt": "null", "status": "success", "jpg": None},
        ],
    )
    ds = open_dataset(tmp_path / "pq")
    assert ds.format_name == "img2dataset-parquet"
    samples = list(ds)
    assert [s.caption for s in samples] == ["a dog"] and samples[0].load_image().size == (48, 32)
    assert ds.skips.counts == {"download status 'failed_to_download'": 1, "no image bytes (failed download)": 1}


def test_hub_webdataset_layout_through_datasets_streaming(tmp_path):
    folder = tmp_path / "cc3m-wds"
    wds_shard(folder / "cc3m-train-0000.tar", [("000000000", jpeg_bytes(), "a dog"), ("000000001", jpeg_bytes(), "b")])
    wds_shard(folder / "cc3m-validation-0000.tar", [("000000005", jpeg_bytes(), "val caption")])
    (folder / "_info.json").write_text(json.dumps({"splits": {}}))
    assert detect_format(folder) == "hf-webdataset"
    train = open_dataset(folder, split="train")
    assert [s.caption for s in train] == ["a dog", "b"]
    val = list(open_dataset(folder, "hf-webdataset", split="validation"))
    assert [(s.record_id, s.caption) for s in val] == [("000000005", "val caption")]
    assert val[0].load_image().size == (48, 32) and val[0].meta["status"] == "success"
