"""The project's own loaders (detclip_bench.datasets) read every part the manifest lists."""

from __future__ import annotations

import itertools

from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.validate import manifest_parts, validate_path
from detclip_bench.schema import DataKind, Sample


def test_data_validate_passes_on_every_part(world):
    root, manifest = world
    reports = validate_path(root)
    assert [r.name for r in reports] == [p["name"] for p in manifest["parts"]]
    for r in reports:
        assert not r.problems, (r.name, r.problems[:3])
        assert r.records > 0, r.name
    by_name = {r.name: r for r in reports}
    assert by_name["o365-train"].records == manifest["counts"]["o365_train_images"]
    assert by_name["lvis-val"].records == manifest["counts"]["lvis_val_images"]
    assert by_name["cc3m-wds"].records == manifest["counts"]["cc_wds_samples"]
    assert by_name["cc12m-parquet"].records == manifest["counts"]["cc_parquet_images"]


def test_open_dataset_yields_samples_of_the_right_kind(world):
    root, _ = world
    expected = {
        "o365": DataKind.DETECTION,
        "lvis": DataKind.DETECTION,
        "odinw": DataKind.DETECTION,
        "mdetr": DataKind.GROUNDING,
        "cc-tsv": DataKind.IMAGE_TEXT,
        "img2dataset-wds": DataKind.IMAGE_TEXT,
        "img2dataset-parquet": DataKind.IMAGE_TEXT,
        "imagenet-folder": DataKind.CLASSIFICATION,
    }
    for part in manifest_parts(root):
        ds = open_dataset(part["path"], part["format"], **part["options"])
        samples = list(itertools.islice(iter(ds), 3))
        assert samples and all(isinstance(s, Sample) for s in samples), part["name"]
        assert {s.kind for s in samples} == {expected[part["format"]]}, part["name"]
        if part["format"] == "imagenet-folder":
            assert samples[0].concepts[0].name in {
                "watermelon",
                "strawberry",
                "pizza slice",
                "crescent moon",
                "cookie",
                "ruler",
                "blueberry",
                "hex nut",
            }
