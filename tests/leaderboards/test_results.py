"""Toolkit result files: atomic write, exact round trip, clear errors for bad files."""

from __future__ import annotations

import json

import pytest

from detclip_bench.errors import DataError
from leaderboards.results import add_result, load_result, load_results

from .conftest import make_result


def test_round_trip(tmp_path, full_odinw_result):
    path = add_result(full_odinw_result, tmp_path)
    assert (
        path.parent == tmp_path
        and path.name == "odinw13-finetune__detclipv2-swin-t__abababababab__fine-tuned__coco.json"
    )
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    assert load_result(path) == full_odinw_result
    assert load_results(tmp_path) == [(path, full_odinw_result)]
    assert json.loads(path.read_text())["metrics_unit"] == "percent"


def test_rewrite_replaces_not_duplicates(tmp_path):
    add_result(make_result(), tmp_path)
    add_result(make_result(metrics={"AP": 56.0}), tmp_path)
    [(_, result)] = load_results(tmp_path)
    assert result.metrics == {"AP": 56.0}


def test_entry_uses_appendix_dataset_names(full_odinw_result):
    entry = full_odinw_result.to_entry("x.json")
    assert list(entry.per_dataset)[:4] == ["PascalVOC", "AerialDrone", "Aquarium", "Rabbits"]
    assert list(entry.per_dataset)[-1] == "Thermal" and entry.evaluated_by == "ours" and entry.table == "ours"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics_unit": "fraction"}, "metrics_unit must be one of ['percent']"),
        ({"metrics": {"AP": 131.0}}, "not a percentage"),
        ({"scale": "full", "suite": "mini-odinw13"}, "mini-world suite but scale is 'full'"),
        ({"checkpoint_sha256": "xyz"}, "64 lowercase hex"),
        ({"date": "yesterday"}, "ISO 8601"),
        ({"evaluated_by": "paper"}, "evaluated_by 'ours' or 'peer-adapter'"),
        ({"gpu": "h100"}, "unknown key(s) ['gpu']"),
        ({"schema_version": 2}, "schema_version 2 is not supported"),
    ],
)
def test_bad_result_file_is_a_clear_error(tmp_path, full_odinw_result, change, message):
    path = add_result(full_odinw_result, tmp_path)
    raw = json.loads(path.read_text())
    raw.update(change)
    path.write_text(json.dumps(raw))
    with pytest.raises(DataError) as info:
        load_results(tmp_path)
    assert message in str(info.value) and path.name in str(info.value)


def test_missing_key_and_malformed_json(tmp_path, full_odinw_result):
    path = add_result(full_odinw_result, tmp_path)
    raw = json.loads(path.read_text())
    del raw["suite_version"]
    path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"missing required key\(s\) \['suite_version'\]"):
        load_result(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="malformed JSON"):
        load_result(path)
    with pytest.raises(DataError, match="does not exist"):
        load_results(tmp_path / "nope")


def test_every_odinw13_member_maps_onto_a_column_of_the_papers_table():
    """One name per member: a suite member's results land in the appendix column of that dataset."""
    import json
    from pathlib import Path

    from detclip_bench.datasets.odinw import ODINW13
    from detclip_bench.mini_world.odinw import ODINW13 as MINI_ODINW13
    from leaderboards.schema import canonical_dataset

    table = Path(__file__).resolve().parents[2] / "leaderboards/data/appendix_table7_odinw13_finetune.json"
    columns = set(json.loads(table.read_text())["entries"][0]["per_dataset"])
    assert len(columns) == 13
    assert {canonical_dataset(m.name) for m in ODINW13} == columns
    assert {canonical_dataset(m.name) for m in MINI_ODINW13} == columns
