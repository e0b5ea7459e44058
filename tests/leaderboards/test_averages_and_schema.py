"""Averages are recomputed and mismatches flagged; malformed tables fail with the file named."""

from __future__ import annotations

import json

import pytest

from detclip_bench.errors import DataError
from leaderboards.averages import check_averages, mean_of_rows
from leaderboards.paper import DATA_DIR, load_paper_table, load_paper_tables

EXPECTED_MEANS = {
    "GLIP-T": 64.9154,
    "GLIPv2-T": 66.4615,
    "DetCLIPv2-T (ours)": 68.5308,
    "GLIP-L": 68.9,
    "GLIPv2-B": 69.4308,
    "GLIPv2-H": 70.4385,
    "DetCLIPv2-L (ours)": 70.4077,
}


def test_appendix_table7_averages_recomputed():
    t7 = next(t for t in load_paper_tables() if t.id == "appendix-7")
    for e in t7.entries:
        assert mean_of_rows(e) == pytest.approx(EXPECTED_MEANS[e.source.row], abs=1e-4)
    checks = check_averages(t7.entries)
    assert len(checks) == 7 and all(c.ok for c in checks)


def test_main_table7_detclipv2_t_mismatch_is_caught():
    entries = [e for t in load_paper_tables() for e in t.entries]
    bad = [c for c in check_averages(entries) if not c.ok]
    assert [(c.entry_key, c.printed, round(c.recomputed, 2)) for c in bad] == [
        ("main-7:odinw13:DetCLIPv2-T:fine-tuned", 68.0, 68.53)
    ]
    assert bad[0].rows_from == "appendix-7:odinw13:DetCLIPv2-T (ours):fine-tuned"
    assert "MISMATCH" in bad[0].describe()


def test_tampered_row_is_flagged(tmp_path):
    raw = json.loads((DATA_DIR / "appendix_table7_odinw13_finetune.json").read_text())
    raw["entries"][0]["per_dataset"]["PascalVOC"]["AP"] = 72.3  # +10 on one of 13 rows: mean +0.77
    (tmp_path / "t7.json").write_text(json.dumps(raw))
    checks = check_averages(load_paper_table(tmp_path / "t7.json").entries)
    assert [c.ok for c in checks] == [False, True, True, True, True, True, True]


def _write_bad(tmp_path, mutate):
    raw = json.loads((DATA_DIR / "appendix_table4_resolution.json").read_text())
    mutate(raw)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["entries"][1].update(metric={"AP": 1.0}), "unknown key(s) ['metric']"),
        (lambda r: r["entries"][1].pop("source"), "missing required key(s) ['source']"),
        (lambda r: r["entries"][1]["source"].pop("row"), "missing required key(s) ['row']"),
        (lambda r: r["entries"][1].update(setting="few-shot"), "setting must be one of"),
        (lambda r: r["entries"][1].update(metrics={"AP": 0.305 * 1000}), "not a percentage"),
        (lambda r: r["entries"][1].update(metrics={"AP": "30.5"}), "must be a number"),
        (lambda r: r["entries"][1].update(suite="coco-val"), "unknown suite"),
        (lambda r: r["entries"][1].update(table="appendix-5"), "file is appendix-4"),
        (lambda r: r.update(extra=1), "unknown key(s) ['extra'] in PaperTable"),
    ],
)
def test_bad_table_is_a_clear_error(tmp_path, mutate, message):
    path = _write_bad(tmp_path, mutate)
    with pytest.raises(DataError) as info:
        load_paper_table(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_duplicate_table_ids_rejected(tmp_path):
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text((DATA_DIR / "main_table8_recall.json").read_text())
    with pytest.raises(DataError, match=r"also defined in a\.json"):
        load_paper_tables(tmp_path)
