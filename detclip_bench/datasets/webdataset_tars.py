"""img2dataset webdataset tars and hub webdataset repos (``pixparse/cc3m-wds``) → IMAGE_TEXT streams.

* ``img2dataset-wds``: a folder of ``NNNNN.tar`` shards (each ``<key>.jpg/.txt/.json``), read
  with the ``webdataset`` library. The ``NNNNN_stats.json`` sidecars give the number of samples
  (``successes``) without reading the tars, so a training epoch can be sized up front.
* ``hf-webdataset``: a local copy (or mount) of a hub webdataset repo, read through
  ``datasets.load_dataset("webdataset", data_files=..., streaming=True)`` exactly as a hub
  stream would be; ``split="train"`` picks ``*-train-*.tar`` shards when the names carry splits.

Images stay undecoded bytes until a transform asks. Samples without an image or with an empty
caption are counted skips; an unreadable tar is a DataError naming the shard.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import orjson

from detclip_bench.datasets.base import StreamSource
from detclip_bench.datasets.image_text import image_text_sample
from detclip_bench.errors import DataError
from detclip_bench.schema import DataKind, Sample

__all__ = ["HubWebDataset", "Img2DatasetTars", "img2dataset_declared_size", "list_shards"]


def list_shards(path: Path, suffix: str) -> list[str]:
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise DataError(str(path), "-", "no such file or folder")
    shards = sorted(str(p) for p in path.glob(f"*{suffix}"))
    if not shards:
        raise DataError(str(path), "-", f"no *{suffix} shards in this folder")
    return shards


def img2dataset_declared_size(shards: list[str]) -> int | None:
    """Sum of img2dataset's ``successes`` over the shards' ``_stats.json`` sidecars (None if any is missing)."""
    total = 0
    for shard in shards:
        stats = Path(shard).with_name(Path(shard).stem + "_stats.json")
        try:
            total += int(orjson.loads(stats.read_bytes())["successes"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
    return total


def _meta(raw) -> dict:
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}


class Img2DatasetTars(StreamSource):
    """img2dataset ``--output_format webdataset`` output (format ``img2dataset-wds``) → IMAGE_TEXT stream.

    On disk: a folder of ``NNNNN.tar`` shards (or one tar), each record ``<key>.jpg``,
    ``<key>.txt`` (caption) and ``<key>.json`` (img2dataset metadata); ``NNNNN_stats.json``
    sidecars, when all present, give :meth:`declared_size` without reading the tars. Records
    without image bytes or with a missing or empty caption are counted skips; an unreadable tar is
    a DataError. ``part=(k, n)`` keeps every n-th record of a shard.

    Each :class:`~detclip_bench.schema.Sample` fills: ``kind`` = IMAGE_TEXT, ``source``,
    ``record_id`` = the record's key, ``image`` = the undecoded bytes (its path is the shard,
    named in decode errors), ``width``/``height`` from the json (0 if absent), ``caption``
    (stripped) and ``meta`` = the parsed json. No concepts: the model extracts noun phrases.

    Args:
        path: a folder of ``.tar`` shards, or one shard.
        skip_log: the :class:`~detclip_bench.errors.SkipLog` counting skipped records.
    """

    format_name = "img2dataset-wds"
    kind = DataKind.IMAGE_TEXT

    def __init__(self, path, *, skip_log=None) -> None:
        super().__init__(path, skip_log)
        self._shards = list_shards(self.path, ".tar")

    def shards(self) -> list[str]:
        return self._shards

    def declared_size(self) -> int | None:
        return img2dataset_declared_size(self._shards)

    def iter_shard(self, shard: str, part: tuple[int, int] = (0, 1)) -> Iterator[Sample]:
        import webdataset as wds

        pipeline = wds.DataPipeline(wds.SimpleShardList([shard]), wds.tarfile_to_samples())
        k, n = part
        try:
            for i, rec in enumerate(pipeline):
                if i % n != k:
                    continue
                meta = _meta(rec.get("json"))
                sample = image_text_sample(
                    source=self.format_name,
                    shard=shard,
                    key=rec["__key__"],
                    image=rec.get("jpg"),
                    caption=rec.get("txt"),
                    meta=meta,
                    skips=self.skips,
                    width=meta.get("width") or 0,
                    height=meta.get("height") or 0,
                )
                if sample is not None:
                    yield sample
        except (tarfile.TarError, OSError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(shard, "-", f"unreadable webdataset shard: {exc}") from exc


class HubWebDataset(StreamSource):
    """A local copy of a hub webdataset repo such as ``pixparse/cc3m-wds`` (format ``hf-webdataset``)
    → IMAGE_TEXT stream.

    On disk: a folder of ``.tar`` shards (or one tar), each record an image (``jpg``, ``jpeg``,
    ``png`` or ``webp``), ``txt`` and optionally ``json``; read shard by shard with
    ``datasets.load_dataset("webdataset", ..., streaming=True)``, the image left undecoded.
    Skips and ``part=(k, n)`` as in :class:`Img2DatasetTars`.

    Samples are filled as by :class:`Img2DatasetTars` (``record_id`` = the record's ``__key__``).

    Args:
        path: the repo folder, or one shard.
        split: keeps the ``*-<split>-*.tar`` shards when the file names carry splits (else all).
        skip_log: the :class:`~detclip_bench.errors.SkipLog` counting skipped records.
    """

    format_name = "hf-webdataset"
    kind = DataKind.IMAGE_TEXT

    def __init__(self, path, *, split: str = "train", skip_log=None) -> None:
        super().__init__(path, skip_log)
        shards = list_shards(self.path, ".tar")
        named = [s for s in shards if f"-{split}-" in Path(s).name]
        self.split = split
        self._shards = named or shards

    def shards(self) -> list[str]:
        return self._shards

    def iter_shard(self, shard: str, part: tuple[int, int] = (0, 1)) -> Iterator[Sample]:
        from datasets import Image, load_dataset

        ds = load_dataset("webdataset", data_files={self.split: [shard]}, split=self.split, streaming=True)
        image_col = next((c for c in ("jpg", "jpeg", "png", "webp") if c in (ds.features or {})), "jpg")
        if ds.features and image_col in ds.features:
            ds = ds.cast_column(image_col, Image(decode=False))
        k, n = part
        for i, rec in enumerate(ds):
            if i % n != k:
                continue
            img = rec.get(image_col)
            meta = _meta(rec.get("json"))
            sample = image_text_sample(
                source=self.format_name,
                shard=shard,
                key=str(rec.get("__key__", i)),
                image=img.get("bytes") if isinstance(img, dict) else img,
                caption=rec.get("txt"),
                meta=meta,
                skips=self.skips,
                width=meta.get("width") or 0,
                height=meta.get("height") or 0,
            )
            if sample is not None:
                yield sample
