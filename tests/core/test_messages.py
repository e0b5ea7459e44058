"""Error messages say what is wrong with the file and the offending value, in words (issue 27, point 10)."""

from __future__ import annotations

import pytest

from detclip_bench import DataError
from detclip_bench.cli.main import main
from detclip_bench.schema import ImageRef


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("ann.json", 7, "bad box"), "ann.json: record 7: bad box"),
        (("ann.json", "-", "not a COCO json"), "ann.json: not a COCO json"),
        (("ann.json", None, "not a COCO json"), "ann.json: not a COCO json"),
        (("photos/", "--images", "no such file or folder"), "--images photos/: no such file or folder"),
        (("--prompts", "cat,,dog", "an empty prompt"), "--prompts 'cat,,dog': an empty prompt"),
    ],
)
def test_data_error_names_file_and_value_without_placeholders(args, text):
    assert str(DataError(*args)) == text


def test_an_undecodable_image_is_named_without_a_python_object_repr():
    with pytest.raises(DataError) as exc:
        ImageRef(data=b"GIF8 not really").open("r1")
    text = str(exc.value)
    assert text.startswith("<in-memory bytes>: record r1: corrupt or unreadable image")
    assert "BytesIO" not in text and "0x" not in text and "(starts b'GIF8 not')" in text


def test_cli_error_for_a_missing_image_folder(tmp_path, capsys):
    missing = tmp_path / "empty_dir"
    assert main(["data", "validate", str(missing)]) == 1
    out = capsys.readouterr()
    assert f"{missing}: no such file or folder" in out.out + out.err and "record -" not in out.out + out.err
