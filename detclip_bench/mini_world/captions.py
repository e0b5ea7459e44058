"""CC-like image-text data: CC3M/CC12M TSVs and the img2dataset outputs made from them.

* ``cc/cc3m.tsv`` (no header; ``caption\\turl``) and ``cc/cc12m.tsv`` (no header; ``url\\tcaption``).
  URLs are ``https://example.invalid/...`` and are never fetched.
* The CC3M rows "downloaded" with img2dataset ``--output_format webdataset``: ``cc/wds/NNNNN.tar``
  (``<key>.jpg/.txt/.json``) + ``NNNNN.parquet`` (metadata of every row, failures included) +
  ``NNNNN_stats.json``.
* The CC12M rows with ``--output_format parquet``: ``cc/parquet/NNNNN.parquet`` (metadata, ``txt``,
  ``jpg`` bytes; ``jpg`` is null for failed rows) + ``NNNNN_stats.json``.
* ``cc/heldout/``: more pairs in the webdataset layout that no recipe trains on (the held-out set of
  ``benchmarks/contrastive_probe.py``).

Scenes draw from all three concept groups with caption-only concepts as the usual subject, and
the alt-text names some, never all, of what is drawn.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from detclip_bench.io import atomic_path, atomic_write_json, atomic_write_text
from detclip_bench.mini_world.phrases import alt_text, distinct_concepts
from detclip_bench.mini_world.render import Difficulty, encode_jpeg
from detclip_bench.mini_world.scenes import PartOutput, main_scene, part_rng, scaled
from detclip_bench.mini_world.vocabulary import CONCEPTS, concepts_in

__all__ = ["write_cc"]

BASE_PAIRS_PER_SOURCE = 300
BASE_HELDOUT_PAIRS = 160  # cc/heldout: pairs no recipe trains on, for the contrastive gauges
SAMPLES_PER_SHARD = 100
FAIL_RATE = 0.03
_ERROR = "HTTP Error 404: Not Found"
_METADATA = pa.schema(
    [
        ("url", pa.string()),
        ("caption", pa.string()),
        ("key", pa.string()),
        ("status", pa.string()),
        ("error_message", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("original_width", pa.int64()),
        ("original_height", pa.int64()),
        ("exif", pa.string()),
        ("sha256", pa.string()),
    ]
)


@dataclass
class Pair:
    url: str
    caption: str
    jpeg: bytes | None  # None: the "download" failed
    size: tuple[int, int]
    present: tuple[str, ...]  # concepts drawn (not written anywhere; lets tests check "never all")


def _make_pairs(rng: np.random.Generator, n: int, source: str, difficulty: Difficulty) -> list[Pair]:
    caption_only = list(concepts_in("caption"))
    others = [c for c in CONCEPTS if c.group != "caption"]
    pool = [replace(c, weight=1.0) for c in CONCEPTS]
    pairs = []
    cc_difficulty = replace(
        difficulty, min_objects=max(2, difficulty.min_objects), max_objects=max(2, min(difficulty.max_objects, 4))
    )
    for i in range(n):
        subject_pool = caption_only if rng.random() < 0.6 else others
        subject = subject_pool[int(rng.integers(len(subject_pool)))]
        second = pool[int(rng.integers(len(pool)))]
        while second.name == subject.name:
            second = pool[int(rng.integers(len(pool)))]
        for _ in range(8):  # re-draw until two distinct concepts were placed ("never all" needs two)
            img, objects = main_scene(rng, pool, cc_difficulty, size=(128, 128), must_include=[subject, second])
            names = distinct_concepts(objects)
            if len(names) >= 2 and subject.name in names:
                break
        else:
            raise ValueError(f"difficulty {difficulty} leaves no room for two objects in a 128 px image")
        others_present = [n_ for n_ in names if n_ != subject.name]
        k = int(rng.integers(0, len(others_present)))  # at most all-but-one of the others
        mention = [subject.name] + [
            others_present[j] for j in sorted(rng.choice(len(others_present), k, replace=False))
        ]
        caption = alt_text(rng, objects, mention, 128)
        url = f"https://example.invalid/{source}/{i:07d}.jpg"
        failed = rng.random() < FAIL_RATE
        pairs.append(Pair(url, caption, None if failed else encode_jpeg(img), img.size, tuple(names)))
    return pairs


def _key(shard: int, idx: int) -> str:
    """img2dataset's key: shard_id * 10**ceil(log10(samples_per_shard)) + idx, 9 digits."""
    return f"{shard * 10 ** math.ceil(math.log10(SAMPLES_PER_SHARD)) + idx:09d}"


def _metadata_row(p: Pair, key: str) -> dict:
    ok = p.jpeg is not None
    w, h = p.size if ok else (None, None)
    return {
        "url": p.url,
        "caption": p.caption,
        "key": key,
        "status": "success" if ok else "failed_to_download",
        "error_message": None if ok else _ERROR,
        "width": w,
        "height": h,
        "original_width": w,
        "original_height": h,
        "exif": None,
        "sha256": hashlib.sha256(p.jpeg).hexdigest() if ok else None,
    }


def _stats(rows: list[dict]) -> dict:
    ok = sum(r["status"] == "success" for r in rows)
    status = {"success": ok, _ERROR: len(rows) - ok} if ok < len(rows) else {"success": ok}
    return {
        "count": len(rows),
        "successes": ok,
        "failed_to_download": len(rows) - ok,
        "failed_to_resize": 0,
        "duration": 0.0,
        "start_time": 0.0,
        "end_time": 0.0,
        "status_dict": status,
    }


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _write_parquet(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _shards(pairs: list[Pair]):
    for shard in range(math.ceil(len(pairs) / SAMPLES_PER_SHARD)):
        chunk = pairs[shard * SAMPLES_PER_SHARD : (shard + 1) * SAMPLES_PER_SHARD]
        yield shard, [(p, _key(shard, i)) for i, p in enumerate(chunk)]


def _write_wds(root: Path, pairs: list[Pair]) -> int:
    n_ok = 0
    for shard, rows in _shards(pairs):
        name = f"{shard:05d}"
        meta = [_metadata_row(p, key) for p, key in rows]
        with atomic_path(root / f"{name}.tar") as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for (p, key), m in zip(rows, meta, strict=True):
                if p.jpeg is None:
                    continue
                _tar_add(tar, f"{key}.jpg", p.jpeg)
                _tar_add(tar, f"{key}.txt", p.caption.encode())
                _tar_add(tar, f"{key}.json", json.dumps(m).encode())
                n_ok += 1
        _write_parquet(root / f"{name}.parquet", meta, _METADATA)
        atomic_write_json(root / f"{name}_stats.json", _stats(meta))
    return n_ok


def _write_parquet_shards(root: Path, pairs: list[Pair]) -> int:
    schema = _METADATA.append(pa.field("txt", pa.string())).append(pa.field("jpg", pa.binary()))
    n_ok = 0
    for shard, rows in _shards(pairs):
        meta = [_metadata_row(p, key) for p, key in rows]
        full = [
            {**m, "txt": p.caption if p.jpeg is not None else None, "jpg": p.jpeg}
            for (p, _), m in zip(rows, meta, strict=True)
        ]
        _write_parquet(root / f"{shard:05d}.parquet", full, schema)
        atomic_write_json(root / f"{shard:05d}_stats.json", _stats(meta))
        n_ok += sum(p.jpeg is not None for p, _ in rows)
    return n_ok


def write_cc(out_dir: Path, seed: int, scale: float, difficulty: Difficulty) -> PartOutput:
    out = PartOutput()
    root = out_dir / "cc"
    n = scaled(BASE_PAIRS_PER_SOURCE, scale, minimum=4)
    cc3m = _make_pairs(part_rng(seed, "cc", 0), n, "cc3m", difficulty)
    cc12m = _make_pairs(part_rng(seed, "cc", 1), n, "cc12m", difficulty)
    atomic_write_text(root / "cc3m.tsv", "".join(f"{p.caption}\t{p.url}\n" for p in cc3m))
    atomic_write_text(root / "cc12m.tsv", "".join(f"{p.url}\t{p.caption}\n" for p in cc12m))
    out.counts.update(
        cc3m_rows=n,
        cc12m_rows=n,
        cc_wds_samples=_write_wds(root / "wds", cc3m),
        cc_parquet_images=_write_parquet_shards(root / "parquet", cc12m),
    )
    # drawn from a stream of its own, so adding it changed none of the training pairs
    heldout = _make_pairs(part_rng(seed, "cc", 2), scaled(BASE_HELDOUT_PAIRS, scale, minimum=16), "heldout", difficulty)
    out.counts.update(cc_heldout_samples=_write_wds(root / "heldout", heldout))
    out.add_part("cc3m-tsv", "cc-tsv", "cc/cc3m.tsv")
    out.add_part("cc12m-tsv", "cc-tsv", "cc/cc12m.tsv")
    out.add_part("cc3m-wds", "img2dataset-wds", "cc/wds")
    out.add_part("cc12m-parquet", "img2dataset-parquet", "cc/parquet")
    out.add_part("cc-heldout-wds", "img2dataset-wds", "cc/heldout")
    return out
