"""Check every record of a dataset (or of every part of a mini-world manifest) and list problems.

A problem is any DataError raised while opening or reading a record (including decoding its
image), a decoded image whose size disagrees with the annotation's width/height (the boxes
would be wrong), and every counted skip except those real data produces by design (:data:`EXPECTED_SKIPS`,
listed as notes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.base import MapSource
from detclip_bench.datasets.coco import KNOWN_MISSING_REASON
from detclip_bench.errors import DataError, SkipLog
from detclip_bench.io import read_json

__all__ = ["PATH_OPTIONS", "ValidationReport", "manifest_parts", "validate_path", "validate_source"]

PATH_OPTIONS = ("image_root", "vg_root", "coco_root", "label_map", "synset_mapping")
_DRAFT = (64, 64)
# Skips that real data produces by design (img2dataset records failed downloads; the HF test
# split has no labels; O365 v2's three unreleased images) are notes, not problems.
EXPECTED_SKIPS = ("download status", "failed download", "no label (test split)", KNOWN_MISSING_REASON)


@dataclass
class ValidationReport:
    name: str
    records: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # expected skips: listed, not failures


def manifest_parts(root) -> list[dict]:
    """A mini-world manifest's parts with paths (and path-valued options) made absolute."""
    root = Path(root)
    manifest = read_json(root / "manifest.json")
    parts = manifest.get("parts") if isinstance(manifest, dict) else None
    if not isinstance(parts, list):
        raise DataError(str(root / "manifest.json"), "parts", "expected {'parts': [...]}")
    out = []
    for n, part in enumerate(parts):
        try:
            options = dict(part.get("options") or {})
            for key in PATH_OPTIONS:
                if key in options:
                    options[key] = str(root / options[key])
            out.append(
                {
                    "name": part.get("name", f"part {n}"),
                    "format": part["format"],
                    "path": root / part["path"],
                    "options": options,
                }
            )
        except (KeyError, TypeError) as exc:
            raise DataError(str(root / "manifest.json"), f"part {n}", f"malformed part ({exc})") from exc
    return out


def _records(source) -> Iterator:
    """Yield samples, or DataErrors in their place, without stopping at the first bad record."""
    if isinstance(source, MapSource):
        for i in range(len(source)):
            try:
                yield source[i]
            except DataError as exc:
                yield exc
        return
    for shard in source.shards():
        try:
            yield from source.iter_shard(shard)
        except DataError as exc:
            yield exc


def validate_source(source, name: str, decode_images: bool = True) -> ValidationReport:
    report = ValidationReport(name)
    for item in tqdm(_records(source), desc=f"validate {name}", unit="rec", leave=False):
        if isinstance(item, DataError):
            report.problems.append(str(item))
            continue
        report.records += 1
        if not decode_images or (item.image.path is None and item.image.data is None):
            continue
        stored: list[tuple[int, int]] = []  # a JPEG's size from its header, before the draft shrinks it
        try:
            img = item.load_image(draft=lambda w, h, seen=stored: seen.append((w, h)) or _DRAFT)
        except DataError as exc:
            report.problems.append(str(exc))
            continue
        size = stored[0] if stored else img.size  # exact, where the draft size is only known up to 1/8
        if item.width and item.height and size != (item.width, item.height):
            report.problems.append(
                f"{item.image.describe()}: record {item.record_id}: image is {size[0]}x"
                f"{size[1]} but the annotation says {item.width}x{item.height}"
            )
    for example in source.skips.examples:
        (report.notes if any(r in example for r in EXPECTED_SKIPS) else report.problems).append(example)
    return report


def validate_path(path, format: str | None = None, decode_images: bool = True, **options) -> list[ValidationReport]:
    """Validate one dataset, or every part of a mini-world root (a folder with manifest.json)."""
    path = Path(path)
    if path.is_dir() and (path / "manifest.json").is_file():
        jobs = [(p["name"], p["path"], p["format"], p["options"]) for p in manifest_parts(path)]
    else:
        jobs = [(path.name, path, format, options)]
    reports = []
    logger = logging.getLogger("detclip_bench")
    level = logger.level
    logger.setLevel(logging.ERROR)  # every skip is listed in the report instead
    try:
        for name, p, fmt, opts in jobs:
            try:
                source = open_dataset(p, fmt, skip_log=SkipLog(name, max_logged=10**9), **opts)
            except DataError as exc:
                reports.append(ValidationReport(name, 0, [str(exc)]))
                continue
            reports.append(validate_source(source, name, decode_images))
    finally:
        logger.setLevel(level)
    return reports
