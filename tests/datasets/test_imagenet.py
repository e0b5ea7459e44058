import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detclip_bench import DataError, DataKind
from detclip_bench.datasets import detect_format, open_dataset
from detclip_bench.datasets.imagenet import ImageNetFolder, ImageNetKaggle, class_concepts
from tests.datasets.writers import jpeg_bytes, write_jpeg

MAPPING = {
    "n01440764": "tench, Tinca tinca",
    "n02012849": "crane",
    "n03126707": "crane",
    "n03710637": "maillot",
    "n03710721": "maillot, tank suit",
}


def _mapping(path):
    path.write_text("".join(f"{w} {n}\n" for w, n in sorted(MAPPING.items())))
    return path


def test_duplicate_names_are_disambiguated_by_wnid():
    wnids = sorted(MAPPING)
    names = [c.name for c in class_concepts([MAPPING[w] for w in wnids], wnids)]
    assert names == ["tench", "crane (bird)", "crane (machine)", "maillot (tights)", "maillot (one-piece swimsuit)"]
    assert len(set(names)) == len(names)
    # HF ClassLabel names carry no wnid: the 1000-class indices 134/517/638/639 are used instead
    raw = ["tench, Tinca tinca"] * 1000
    raw[134], raw[517], raw[638], raw[639] = "crane", "crane", "maillot", "maillot, tank suit"
    by_index = class_concepts(raw)
    assert [by_index[i].name for i in (134, 517, 638, 639)] == [
        "crane (bird)",
        "crane (machine)",
        "maillot (tights)",
        "maillot (one-piece swimsuit)",
    ]
    # any other collision gets its index appended rather than two classes sharing a prompt
    assert [c.name for c in class_concepts(["a, x", "a, y"])] == ["a (0)", "a (1)"]


def test_ilsvrc_folder_layout(tmp_path):
    for w in ("n03126707", "n01440764"):
        for k in (2, 1):
            write_jpeg(tmp_path / "train" / w / f"{w}_{k}.JPEG")
    write_jpeg(tmp_path / "val" / "n01440764" / "ILSVRC2012_val_00000001.JPEG")
    _mapping(tmp_path / "LOC_synset_mapping.txt")
    ds = ImageNetFolder(tmp_path, split="train")
    samples = list(ds)
    assert [(s.record_id, s.caption, s.concepts[0].category_id) for s in samples] == [
        ("n01440764_1.JPEG", "tench", 0),
        ("n01440764_2.JPEG", "tench", 0),
        ("n03126707_1.JPEG", "crane (machine)", 2),
        ("n03126707_2.JPEG", "crane (machine)", 2),
    ]
    assert samples[0].kind is DataKind.CLASSIFICATION and samples[0].concepts[0].key == "tench, Tinca tinca"
    assert len(ImageNetFolder(tmp_path, split="val")) == 1


def test_folder_without_names_or_with_unknown_class_is_an_error(tmp_path):
    write_jpeg(tmp_path / "train" / "n09999999" / "x.JPEG")
    with pytest.raises(DataError, match="synset_mapping"):
        ImageNetFolder(tmp_path)
    mapping = _mapping(tmp_path / "m.txt")
    with pytest.raises(DataError, match="not in the synset mapping") as err:
        ImageNetFolder(tmp_path, synset_mapping=mapping)
    assert err.value.record == "n09999999"


def test_kaggle_layout_with_flat_val(tmp_path):
    _mapping(tmp_path / "LOC_synset_mapping.txt")
    cls_loc = tmp_path / "ILSVRC" / "Data" / "CLS-LOC"
    write_jpeg(cls_loc / "train" / "n02012849" / "n02012849_7.JPEG")
    write_jpeg(cls_loc / "val" / "ILSVRC2012_val_00000001.JPEG")
    write_jpeg(cls_loc / "val" / "ILSVRC2012_val_00000002.JPEG")
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000002,n03710721 1 2 3 4 n03710721 5 6 7 8\n"
        "ILSVRC2012_val_00000001,n02012849 1 2 3 4\n"
    )
    assert detect_format(tmp_path) == "imagenet-kaggle"
    train = open_dataset(tmp_path)
    assert isinstance(train, ImageNetKaggle) and [s.caption for s in train] == ["crane (bird)"]
    val = list(open_dataset(tmp_path, split="val"))
    assert [(s.record_id, s.caption) for s in val] == [
        ("ILSVRC2012_val_00000001.JPEG", "crane (bird)"),
        ("ILSVRC2012_val_00000002.JPEG", "maillot (one-piece swimsuit)"),
    ]
    assert val[0].load_image().size == (48, 32)


def test_hf_imagenet_parquet(tmp_path):
    names = ["tench, Tinca tinca", "goldfish, Carassius auratus"]
    features = {"info": {"features": {"image": {"_type": "Image"}, "label": {"names": names, "_type": "ClassLabel"}}}}
    table = pa.Table.from_pylist(
        [
            {"image": {"bytes": jpeg_bytes(), "path": "a.JPEG"}, "label": 1},
            {"image": {"bytes": jpeg_bytes(), "path": "b.JPEG"}, "label": -1},
            {"image": {"bytes": jpeg_bytes(), "path": "c.JPEG"}, "label": 0},
        ]
    ).replace_schema_metadata({"huggingface": json.dumps(features)})
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "train-00000-of-00001.parquet")
    assert detect_format(tmp_path / "data") == "imagenet-hf-parquet"
    ds = open_dataset(tmp_path / "data")
    samples = list(ds)
    assert [(s.record_id, s.caption) for s in samples] == [("a.JPEG", "goldfish"), ("c.JPEG", "tench")]
    assert ds.skips.counts == {"no label (test split)": 1}
    assert samples[0].load_image().size == (48, 32)
    plain = pa.Table.from_pylist([{"image": {"bytes": jpeg_bytes(), "path": "a"}, "label": 0}])
    pq.write_table(plain, tmp_path / "plain.parquet")
    with pytest.raises(DataError, match="no ClassLabel names"):
        open_dataset(tmp_path / "plain.parquet", "imagenet-hf-parquet")
