"""A compact, cached, columnar index of a COCO-style json (COCO, O365, LVIS, ODinW, MDETR).

Why: O365 v2's train json is ~6 GB; pycocotools keeps it as Python dicts (tens of GB, copied
again by every forked DataLoader worker as refcounts touch the pages). We parse it once, turn
every field we need into flat numpy arrays (annotations sorted by image, with per-image
offsets; strings as one utf-8 buffer + offsets; ragged lists as values + offsets) and save
them beside the json as ``<json>.index.npz``. Later runs load only the arrays; the cache is
rebuilt when the json's size or mtime changes or when the requested fields differ.

Integrity problems that make a file self-contradictory (duplicate image or annotation ids, an
annotation pointing at a missing image or an unknown category, a bbox that is not 4 numbers)
are DataErrors naming the file and record: no real dataset needs them tolerated.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from detclip_bench.datasets.json_chunks import NotChunkable, annotation_pieces
from detclip_bench.errors import DataError
from detclip_bench.io import atomic_path, read_json

__all__ = ["CocoIndex", "IndexSpec", "load_or_build_index", "pack_strings"]

log = logging.getLogger("detclip_bench")
INDEX_VERSION = 1


@dataclass(frozen=True)
class IndexSpec:
    """Which extra fields to keep (missing keys read as "" / 0 / [])."""

    image_str: tuple[str, ...] = ("file_name",)
    image_ragged: tuple[str, ...] = ()  # int lists per image (LVIS neg_category_ids, ...)
    ann_int: tuple[str, ...] = ("iscrowd",)
    ann_spans: tuple[str, ...] = ()  # [[start, end], ...] per annotation (MDETR tokens_positive)
    check_categories: bool = True


def _ragged(lists, dtype, width: int = 0) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(x) for x in lists), np.int64, len(lists))
    offsets = np.zeros(len(lists) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = chain.from_iterable(chain.from_iterable(x) for x in lists) if width else chain.from_iterable(lists)
    count = int(offsets[-1]) * max(width, 1)
    values = np.fromiter(flat, dtype, count)
    return (values.reshape(-1, width) if width else values), offsets


def pack_strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum(np.fromiter((len(b) for b in encoded), np.int64, len(encoded)), out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8).copy(), offsets


class CocoIndex:
    """Read-only columnar view; ``a[...]`` holds the arrays (see ``build`` for the names)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.a = arrays
        self.categories: list[dict] = json.loads(bytes(arrays["categories_json"]).decode("utf-8"))

    @property
    def n_images(self) -> int:
        return len(self.a["img_id"])

    @property
    def n_annotations(self) -> int:
        return len(self.a["ann_id"])

    def image_str(self, field: str, i: int) -> str:
        buf, off = self.a[f"img_{field}_buf"], self.a[f"img_{field}_off"]
        return bytes(buf[off[i] : off[i + 1]]).decode("utf-8")

    def image_list(self, field: str, i: int) -> np.ndarray:
        off = self.a[f"img_{field}_off"]
        return self.a[f"img_{field}"][off[i] : off[i + 1]]

    def ann_slice(self, i: int) -> slice:
        off = self.a["ann_off"]
        return slice(int(off[i]), int(off[i + 1]))

    def ann_spans(self, field: str, j: int) -> np.ndarray:
        off = self.a[f"ann_{field}_off"]
        return self.a[f"ann_{field}"][off[j] : off[j + 1]]

    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.a.values())


def _locate(path: Path, records: list, kind: str, check) -> DataError:
    for n, rec in enumerate(records):
        try:
            check(rec)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            rid = rec.get("id", f"#{n}") if isinstance(rec, dict) else f"#{n}"
            return DataError(str(path), f"{kind} {rid}", f"malformed record ({type(exc).__name__}: {exc})")
    return DataError(str(path), kind, "malformed records")


def _first_duplicate(path: Path, ids: np.ndarray, kind: str) -> None:
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = int(uniq[counts > 1][0])
        raise DataError(str(path), f"{kind} {dup}", f"duplicate {kind} id ({int((counts > 1).sum())} ids repeated)")


def _check_ann(a) -> None:
    if len(a["bbox"]) != 4:
        raise ValueError(f"bbox has {len(a['bbox'])} numbers, expected 4")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in a["bbox"]):
        raise ValueError(f"bbox must be 4 numbers, got {a['bbox']!r}")
    int(a["image_id"]), int(a["category_id"]), int(a["id"])


def _check_int_list(im: dict, field: str) -> None:
    value = im.get(field) or []
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{field!r} must be a list of integer ids, got {str(value)[:80]!r}")


def _ann_columns(path: Path, anns: list, spec: IndexSpec) -> dict[str, np.ndarray]:
    n = len(anns)
    try:
        if any(len(a["bbox"]) != 4 for a in anns):
            raise ValueError("bbox length")
        cols = {
            "id": np.fromiter((a["id"] for a in anns), np.int64, n),
            "img": np.fromiter((a["image_id"] for a in anns), np.int64, n),
            "cat": np.fromiter((a["category_id"] for a in anns), np.int64, n),
            "bbox": np.fromiter(chain.from_iterable(a["bbox"] for a in anns), np.float64, 4 * n).reshape(-1, 4),
        }
        for f in spec.ann_int:
            cols[f"int_{f}"] = np.fromiter((a.get(f) or 0 for a in anns), np.int64, n)
        for f in spec.ann_spans:
            cols[f"span_{f}"], cols[f"spanoff_{f}"] = _ragged([a.get(f) or [] for a in anns], np.int64, width=2)
    except (KeyError, TypeError, ValueError) as exc:
        raise _locate(path, anns, "annotation", _check_ann) from exc
    return cols


def _concat(parts: list[dict[str, np.ndarray]], spec: IndexSpec) -> dict[str, np.ndarray]:
    if not parts:
        parts = [_ann_columns(Path("-"), [], spec)]
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if not k.startswith("spanoff_")}
    for k in (k for k in parts[0] if k.startswith("spanoff_")):
        shift = np.cumsum([0] + [int(p[k][-1]) for p in parts[:-1]])
        out[k] = np.concatenate([[0]] + [p[k][1:] + s for p, s in zip(parts, shift, strict=True)]).astype(np.int64)
    return out


def _load(path: Path, spec: IndexSpec, chunk_bytes: int, chunk_min: int):
    """(images, categories, annotation columns); big files are parsed piecewise (json_chunks)."""
    if path.stat().st_size >= chunk_min:
        try:
            head, pieces = annotation_pieces(path, chunk_bytes)
            parts = [_ann_columns(path, piece, spec) for piece in pieces]
            if isinstance(head.get("images"), list):
                return head["images"], head.get("categories") or [], _concat(parts, spec)
        except NotChunkable as exc:
            log.info("%s: parsing whole file (%s)", path, exc)
    data = read_json(path)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        raise DataError(str(path), "-", "not a COCO-style json (needs 'images' and 'annotations' lists)")
    # read, never modified: the parse may be shared with the scoring GT (detclip_bench.io.shared_json_reads)
    return data["images"], data.get("categories") or [], _ann_columns(path, data["annotations"], spec)


def build(
    path: Path, spec: IndexSpec, chunk_bytes: int = 64 << 20, chunk_min: int = 256 << 20
) -> dict[str, np.ndarray]:
    images, cats, cols = _load(path, spec, chunk_bytes, chunk_min)
    out: dict[str, np.ndarray] = {}
    try:
        out["img_id"] = np.fromiter((im["id"] for im in images), np.int64, len(images))
        out["img_w"] = np.fromiter((im["width"] for im in images), np.int64, len(images))
        out["img_h"] = np.fromiter((im["height"] for im in images), np.int64, len(images))
    except (KeyError, TypeError, ValueError) as exc:
        raise _locate(path, images, "image", lambda r: (int(r["id"]), int(r["width"]), int(r["height"]))) from exc
    _first_duplicate(path, out["img_id"], "image")
    bad = np.flatnonzero((out["img_w"] <= 0) | (out["img_h"] <= 0))
    if len(bad):
        raise DataError(str(path), f"image {int(out['img_id'][bad[0]])}", "width/height must be positive")
    for field in spec.image_str:
        out[f"img_{field}_buf"], out[f"img_{field}_off"] = pack_strings([str(im.get(field) or "") for im in images])
    for field in spec.image_ragged:
        values = [im.get(field) or [] for im in images]
        if not all(type(v) is list and all(type(c) is int for c in v) for v in values):  # "3" would read as [3]
            raise _locate(path, images, "image", lambda r, f=field: _check_int_list(r, f))
        out[f"img_{field}"], out[f"img_{field}_off"] = _ragged(values, np.int64)
    ann_id, ann_img, ann_cat, bbox = cols["id"], cols["img"], cols["cat"], cols["bbox"]
    extra = {f: cols[f"int_{f}"] for f in spec.ann_int}
    spans = {f: (cols[f"span_{f}"], cols[f"spanoff_{f}"]) for f in spec.ann_spans}
    n_images = len(images)
    del images
    _first_duplicate(path, ann_id, "annotation")

    order = np.argsort(out["img_id"], kind="stable")
    pos = np.clip(np.searchsorted(out["img_id"], ann_img, sorter=order), 0, max(len(order) - 1, 0))
    img_index = order[pos] if len(order) else np.zeros(0, np.int64)
    missing = np.flatnonzero(out["img_id"][img_index] != ann_img) if len(order) else np.arange(len(ann_id))
    if len(missing):
        j = missing[0]
        raise DataError(str(path), f"annotation {int(ann_id[j])}", f"image_id {int(ann_img[j])} is not in 'images'")
    try:
        cat_ids = np.array(sorted(int(c["id"]) for c in cats), np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise _locate(path, cats, "category", lambda c: int(c["id"])) from exc
    if spec.check_categories:
        unknown = np.flatnonzero(~np.isin(ann_cat, cat_ids))
        if len(unknown):
            j = unknown[0]
            raise DataError(str(path), f"annotation {int(ann_id[j])}", f"unknown category_id {int(ann_cat[j])}")
    _first_duplicate(path, cat_ids, "category")

    perm = np.argsort(img_index, kind="stable")
    out["ann_off"] = np.zeros(n_images + 1, np.int64)
    np.cumsum(np.bincount(img_index, minlength=n_images), out=out["ann_off"][1:])
    out["ann_id"], out["ann_cat"], out["ann_bbox"] = ann_id[perm], ann_cat[perm], bbox[perm].astype(np.float32)
    for f, col in extra.items():
        out[f"ann_{f}"] = col[perm].astype(np.int32)
    for f, (vals, off) in spans.items():
        lengths = np.diff(off)[perm]
        starts = off[:-1][perm]
        idx = np.repeat(starts, lengths) + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths))
        out[f"ann_{f}"] = vals[idx].astype(np.int32).reshape(-1, 2)
        out[f"ann_{f}_off"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    out["categories_json"] = np.frombuffer(json.dumps(cats).encode("utf-8"), np.uint8).copy()
    return out


def _stamp(path: Path, spec: IndexSpec) -> str:
    st = path.stat()
    return json.dumps({"v": INDEX_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "spec": asdict(spec)})


def load_or_build_index(path, spec: IndexSpec, cache: bool = True, cache_path=None, **build_options) -> CocoIndex:
    """The cached index if it matches the json (size, mtime, fields); otherwise build and save it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "-", "annotation file not found")
    stamp = _stamp(path, spec)
    cache_file = Path(cache_path) if cache_path else path.with_name(path.name + ".index.npz")
    if cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                if bytes(z["stamp"]).decode("utf-8") == stamp:
                    return CocoIndex({k: z[k] for k in z.files if k != "stamp"})
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # a truncated npz is a BadZipFile
            log.warning("ignoring unreadable index cache %s", cache_file)
    arrays = build(path, spec, **build_options)
    if cache:
        try:
            with atomic_path(cache_file) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, stamp=np.frombuffer(stamp.encode("utf-8"), np.uint8), **arrays)
        except OSError as exc:
            log.warning("cannot write index cache %s (%s); using it in memory only", cache_file, exc)
    return CocoIndex(arrays)
