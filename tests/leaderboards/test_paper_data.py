"""The paper tables load, validate and match the appendix text number for number."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leaderboards.paper import DATA_DIR, load_paper_table, load_paper_tables

APPENDIX = Path(__file__).resolve().parents[2].parent / "shared" / "paper" / "detclipv2_appendix.txt"


def _tables() -> dict:
    return {t.id: t for t in load_paper_tables()}


def test_every_data_file_loads_with_expected_rows():
    tables = _tables()
    assert {f.name for f in DATA_DIR.glob("*.json")} and len(tables) == len(list(DATA_DIR.glob("*.json")))
    counts = {tid: len(t.entries) for tid, t in tables.items()}
    assert counts == {
        "main-4": 4,
        "main-6": 10,
        "main-7": 7,
        "main-8": 3,
        "appendix-4": 4,
        "appendix-5": 7,
        "appendix-6": 10,
        "appendix-7": 7,
    }
    for t in tables.values():
        for e in t.entries:
            assert e.evaluated_by == "paper" and e.source.transcribed_from and e.scale == "full"


def test_spot_values_from_method_md():
    t = _tables()
    m7 = {(e.suite, e.model): e for e in t["main-7"].entries}
    assert m7[("odinw13", "DetCLIPv2-T")].metrics == {"AP": 68.0}
    assert m7[("lvis-minival", "DetCLIPv2-L")].metrics == {"AP": 60.1, "APr": 58.3, "APc": 61.7, "APf": 59.1}
    m8 = t["main-8"].entries[2]
    assert m8.protocol == "lvis-ar" and m8.metrics == {"AR": 59.4, "ARs": 44.5, "ARm": 69.4, "ARl": 76.8}
    m6 = {e.source.row: e for e in t["main-6"].entries}
    assert m6["Supervised ATSS Swin-L (LVIS)"].setting == "supervised"
    assert m6["MDETR"].metrics == {"AP": 24.2}


def _strip(cell: str) -> str:
    return re.sub(r"</?b>|\$|\\times", " ", cell).strip()


def _parse_appendix(text: str) -> dict:
    """Rows of appendix Tables 4–7 as printed in the extracted text (tab-separated lines)."""
    lines = [ln.split("\t") for ln in text.splitlines() if "\t" in ln]
    out: dict = {"t4": {}, "t5": {}, "t6": {}, "t7": {}}
    for cells in lines:
        cells = [_strip(c) for c in cells]
        if re.fullmatch(r"\d+\s+\d+", cells[0]) and cells[1].endswith("GB"):
            res = int(cells[0].split()[0])
            out["t4"][res] = (float(cells[1].split()[0]), float(cells[2]), float(cells[3]))
        elif re.fullmatch(r"\d", cells[0]) and len(cells) == 4:
            nums = [float(x) for x in re.findall(r"\d+\.\d", cells[3])]
            out["t5"][int(cells[0])] = (cells[1], cells[2], nums)
        elif len(cells) == 6 and "(Swin-" in cells[1]:
            zs = [float(x) for x in re.findall(r"\d+\.\d", cells[2] + " " + cells[3])]
            ft = [float(x) for x in re.findall(r"\d+\.\d", cells[4] + " " + cells[5])]
            out["t6"][(cells[0], cells[1])] = (zs, ft)
        elif len(cells) in (8,) and re.match(r"(GLIP|DetCLIP)", cells[0]):
            out["t7"].setdefault(cells[0], []).extend(float(x) for x in cells[1:])
    return out


@pytest.mark.skipif(
    not APPENDIX.is_file(), reason=f"appendix text not present at {APPENDIX} (shared folder outside the repo)"
)
def test_data_files_match_appendix_text():
    parsed = _parse_appendix(APPENDIX.read_text(encoding="utf-8"))
    t = _tables()
    t4 = {
        e.config["image_text_resolution"]: (e.cost["gpu_memory_gb"], e.cost["gpu_hours"], e.metrics["AP"])
        for e in t["appendix-4"].entries
    }
    assert t4 == parsed["t4"] and len(t4) == 4
    t5 = {
        int(e.source.row[1:]): (e.backbone, e.pretrain_data, [e.metrics[k] for k in ("AP", "APr", "APc", "APf")])
        for e in t["appendix-5"].entries
    }
    assert t5 == parsed["t5"] and len(t5) == 7
    assert len(parsed["t6"]) == 8
    t6 = {}
    for e in t["appendix-6"].entries:
        zs, ft = t6.setdefault(e.source.row, ([], []))
        (ft if e.setting in ("fine-tuned", "supervised") else zs).extend(
            e.metrics[k] for k in ("AP", "APr", "APc", "APf")
        )
    assert t6 == _t6_by_label(parsed)
    t7 = {e.source.row: [r["AP"] for r in e.per_dataset.values()] + [e.metrics["AP"]] for e in t["appendix-7"].entries}
    assert t7 == parsed["t7"] and len(t7) == 7


def _t6_by_label(parsed: dict) -> dict:
    return {(m if m != "Supervised" else f"{m} {det}"): v for (m, det), v in parsed["t6"].items()}


def test_single_file_loader_names_the_file(tmp_path):
    src = DATA_DIR / "appendix_table4_resolution.json"
    table = load_paper_table(src)
    assert table.id == "appendix-4" and table.entries[2].metrics["AP"] == 31.3
