"""Guess a path's format from file names and the first bytes of its content (never a full parse).

Each rule proposes candidate formats; exactly one candidate wins, none or several is a DataError
that lists what was seen and asks for ``--format``.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from detclip_bench.datasets import DATASET_FORMATS
from detclip_bench.datasets.object_store import is_url, shard_name
from detclip_bench.errors import DataError

__all__ = ["detect_format"]

_PEEK = 1 << 20
_WNID = re.compile(r"^n\d{8}$")
_HUB_SHARD = re.compile(r"-(train|validation|val|test)-\d+\.tar$")


def _peek(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_PEEK)


def _json_candidates(path: Path) -> set[str]:
    head = _peek(path)
    first_line = head.split(b"\n", 1)[0]
    try:
        obj = orjson.loads(first_line)
        if isinstance(obj, dict) and "filename" in obj and ("detection" in obj or "grounding" in obj):
            return {"odvg"}
    except orjson.JSONDecodeError:
        pass
    name = path.name.lower()
    found = set()
    if "lvis" in name or b'"not_exhaustive_category_ids"' in head or b'"neg_category_ids"' in head:
        found.add("lvis")
    if name.startswith("final_") or b'"tokens_positive"' in head:
        found.add("mdetr")
    if any(k in name for k in ("objects365", "zhiyuan_objv2", "obj365")) or b'"isfake"' in head:
        found.add("o365")
    if name == "_annotations.coco.json" or name.endswith("annotations_without_background.json"):
        found.add("odinw")
    if not found and b'"images"' in head and b'"annotations"' in head:
        found.add("coco")
    return found


def _parquet_candidates(path: Path) -> set[str]:
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises several types for non-parquet bytes
        raise DataError(str(path), "-", f"unreadable parquet: {exc}") from exc
    if {"image", "label"} <= names:
        return {"imagenet-hf-parquet"}
    if "jpg" in names or "status" in names:
        return {"img2dataset-parquet"}
    return set()


def _dir_candidates(path: Path) -> set[str]:
    found = set()
    entries = {p.name: p for p in path.iterdir()}
    if "LOC_synset_mapping.txt" in entries:
        found.add("imagenet-kaggle")
    elif any(_WNID.match(n) and p.is_dir() for n, p in entries.items()) or any(
        (path / s).is_dir() and any(_WNID.match(c.name) for c in (path / s).iterdir()) for s in ("train", "val")
    ):
        found.add("imagenet-folder")
    tars = [n for n in entries if n.endswith(".tar")]
    if tars:
        found.add("hf-webdataset" if all(_HUB_SHARD.search(n) for n in tars) else "img2dataset-wds")
    parquets = sorted(n for n in entries if n.endswith(".parquet"))
    if parquets and not tars:
        found |= _parquet_candidates(entries[parquets[0]])
    if "_annotations.coco.json" in entries or "annotations_without_background.json" in entries:
        found.add("odinw")
    return found


def _url_candidates(url: str) -> set[str]:
    """A URL is judged by its shard names only (a brace pattern expanded, nothing fetched): tars are webdataset."""
    from braceexpand import braceexpand

    names = [shard_name(u) for u in braceexpand(url)]
    if all(n.endswith(".tar") for n in names):
        return {"hf-webdataset" if all(_HUB_SHARD.search(n) for n in names) else "img2dataset-wds"}
    return set()


def detect_format(path) -> str:
    if is_url(path):
        found = _url_candidates(str(path))
        if len(found) == 1:
            return found.pop()
        raise DataError(str(path), "-", "cannot tell the dataset format of this URL; pass --format")
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), "-", "no such file or folder")
    if path.is_dir():
        if (path / "manifest.json").is_file():
            raise DataError(str(path), "-", "this is a mini-world root (manifest.json); open its parts one by one")
        found = _dir_candidates(path)
    else:
        suffix = path.suffix.lower()
        if suffix in (".json", ".jsonl"):
            found = _json_candidates(path)
        elif suffix == ".tsv":
            found = {"cc-tsv"}
        elif suffix == ".tar":
            found = {"img2dataset-wds"}
        elif suffix == ".parquet":
            found = _parquet_candidates(path)
        else:
            found = set()
    if len(found) == 1:
        return found.pop()
    known = ", ".join(DATASET_FORMATS.names())
    if not found:
        raise DataError(str(path), "-", f"cannot tell the dataset format; pass --format (one of: {known})")
    raise DataError(str(path), "-", f"ambiguous format (could be {', '.join(sorted(found))}); pass --format")
