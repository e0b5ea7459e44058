"""Load the paper's published tables from ``leaderboards/data/*.json``, validated."""

from __future__ import annotations

import os
from pathlib import Path

from detclip_bench.errors import DataError
from detclip_bench.io import read_json
from leaderboards.schema import PaperTable
from leaderboards.validate import build

__all__ = ["DATA_DIR", "load_paper_table", "load_paper_tables"]

DATA_DIR = Path(__file__).resolve().parent / "data"


def load_paper_table(path: str | os.PathLike) -> PaperTable:
    path = Path(path)
    return build(PaperTable, read_json(path), str(path), "table")


def load_paper_tables(data_dir: str | os.PathLike | None = None) -> list[PaperTable]:
    """Every table in ``data_dir``, main paper first, each in table-number order."""
    data_dir = Path(data_dir) if data_dir else DATA_DIR
    files = sorted(data_dir.glob("*.json"))
    if not files:
        raise DataError(str(data_dir), "-", "no paper tables (*.json) found")
    tables = [load_paper_table(f) for f in files]
    seen: dict[str, Path] = {}
    for table, f in zip(tables, files, strict=True):
        if table.id in seen:
            raise DataError(str(f), "table", f"table {table.id} is also defined in {seen[table.id].name}")
        seen[table.id] = f
    return sorted(tables, key=lambda t: (t.document != "main", t.number))
