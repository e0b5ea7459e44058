import json

import pytest
from PIL import Image

from detclip_bench import DataError
from detclip_bench.cli.main import main
from detclip_bench.datasets import DATASET_FORMATS, detect_format
from detclip_bench.datasets.odinw import ODINW13
from tests.datasets.writers import lvis_v1, mdetr_mixed, o365_v2, roboflow_split, write_jpeg, write_json


def test_every_registered_format_resolves_to_a_loader_class():
    assert len(DATASET_FORMATS) == 13
    for name in DATASET_FORMATS:
        assert DATASET_FORMATS.get(name).format_name == name


def test_detection_from_names_and_content(tmp_path):
    assert detect_format(o365_v2(tmp_path / "o")) == "o365"
    assert detect_format(lvis_v1(tmp_path / "l")) == "lvis"
    assert detect_format(mdetr_mixed(tmp_path / "g")) == "mdetr"
    assert detect_format(roboflow_split(tmp_path / "r" / "train")) == "odinw"
    assert detect_format(tmp_path / "r" / "train") == "odinw"
    (tmp_path / "x.tsv").write_text("a\thttps://x\n")
    assert detect_format(tmp_path / "x.tsv") == "cc-tsv"


def test_unknown_or_ambiguous_format_asks_for_format(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="pass --format"):
        detect_format(tmp_path / "notes.txt")
    # an LVIS-looking json that also carries MDETR spans: refuse to guess
    p = write_json(tmp_path / "lvis_grounding.json", {"images": [], "annotations": [{"tokens_positive": []}]})
    with pytest.raises(DataError, match=r"ambiguous format \(could be lvis, mdetr\); pass --format"):
        detect_format(p)
    with pytest.raises(DataError, match="no such file"):
        detect_format(tmp_path / "nope.json")


def test_cli_inspect_prints_counts_and_draws_a_sample(tmp_path, capsys):
    ann = o365_v2(tmp_path, n_images=3)
    png = tmp_path / "sample.png"
    assert main(["data", "inspect", str(ann), "--out", str(png)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "o365" and info["records"] == 3 and info["classes"] == 5
    assert info["sample"]["concepts"] == ["Person", "Cabinet"]
    img = Image.open(png)
    assert img.size == (48, 32)
    assert img.convert("RGB").getpixel((2, 8)) != (200, 30, 30)  # a box edge was drawn over the image


def test_cli_inspect_stream_with_option(tmp_path, capsys):
    tsv = tmp_path / "cc12m.tsv"
    tsv.write_text("https://x/1.jpg\ta dog\nhttps://x/2.jpg\ta cat\n")
    assert main(["data", "inspect", str(tsv), "--option", "columns=url,caption", "--index", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["records"] == 2 and info["sample"]["caption"] == "a cat"


def test_cli_validate_lists_problems_and_exits_1(tmp_path, capsys):
    ann = o365_v2(tmp_path, n_images=3)
    assert main(["data", "validate", str(ann)]) == 0
    data = json.loads(ann.read_text())
    data["annotations"][0]["bbox"] = [1, 1, 0, 5]
    ann.write_text(json.dumps(data))
    (tmp_path / "train" / "patch1" / "objects365_v1_00000003.jpg").write_bytes(b"\xff\xd8broken")
    write_jpeg(tmp_path / "train" / "patch0" / "objects365_v1_00000002.jpg", 30, 30)
    assert main(["data", "validate", str(ann), "--format", "o365"]) == 1
    out = capsys.readouterr().out
    assert f"{ann}: record annotation 10: skipped: box with w or h <= 0" in out
    assert "objects365_v1_00000003.jpg: record 3: corrupt or unreadable image" in out
    assert "record 2: image is 30x30 but the annotation says 48x32" in out
    assert "3 problem(s)" in out


def test_cli_validate_malformed_json_exits_1(tmp_path, capsys):
    bad = tmp_path / "instances.json"
    bad.write_text('{"images": [')
    assert main(["data", "validate", str(bad), "--format", "coco"]) == 1
    assert "malformed JSON" in capsys.readouterr().out


def test_cli_validate_manifest_root(tmp_path, capsys):
    o365_v2(tmp_path / "o365")
    lvis_v1(tmp_path)
    write_json(
        tmp_path / "manifest.json",
        {
            "parts": [
                {
                    "name": "o365-train",
                    "format": "o365",
                    "path": "o365/annotations/zhiyuan_objv2_train.json",
                    "options": {"image_root": "o365/train"},
                },
                {
                    "name": "lvis-val",
                    "format": "lvis",
                    "path": "lvis/lvis_v1_val.json",
                    "options": {"image_root": "coco"},
                },
            ]
        },
    )
    assert main(["data", "validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "o365-train: 4 records, ok" in out and "lvis-val: 2 records, ok" in out
    (tmp_path / "coco" / "val2017" / "000000000001.jpg").unlink()
    assert main(["data", "validate", str(tmp_path)]) == 1
    assert "image file missing on disk" in capsys.readouterr().out


def test_cli_make_mini_then_validate_every_part(tmp_path, capsys):
    out = tmp_path / "mini"
    assert main(["data", "make-mini", "--out", str(out), "--scale", "0.1", "--seed", "3"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert {p["format"] for p in manifest["parts"]} <= set(DATASET_FORMATS)
    assert main(["data", "validate", str(out)]) == 0
    assert f"{len(manifest['parts'])} dataset(s) checked, 0 problem(s)" in capsys.readouterr().out
    for member in ODINW13:  # the manifest the suites use finds every split of the generated ODinW
        for split in ("train", "val", "test"):
            ds = member.open(out / "odinw", split)
            assert len(ds) > 0 and [c.name for c in ds.vocabulary()] == list(member.classes)


def test_cli_options_are_typed_so_zero_means_false():
    from detclip_bench.cli.data import _options

    opts = _options(["check_images=0", "cache=false", "split=train", "min-size=2.5"])
    assert opts == {"check_images": 0, "cache": False, "split": "train", "min_size": 2.5}
    assert not opts["check_images"]
