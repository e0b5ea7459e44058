"""img2dataset webdataset tars and hub webdataset repos (``pixparse/cc3m-wds``) → IMAGE_TEXT streams,
from a local folder or from object storage.

* ``img2dataset-wds``: a folder of ``NNNNN.tar`` shards (each ``<key>.jpg/.txt/.json``), read
  record by record with :mod:`~detclip_bench.datasets.tar_records` (webdataset's naming rules). The
  ``NNNNN_stats.json`` sidecars give the number of samples (``successes``) without reading the tars,
  so a training epoch can be sized up front.
* ``hf-webdataset``: a local copy (or mount) of a hub webdataset repo, read through
  ``datasets.load_dataset("webdataset", data_files=..., streaming=True)`` exactly as a hub
  stream would be; ``split="train"`` picks ``*-train-*.tar`` shards when the names carry splits.

Both also take a URL read through fsspec (``s3://``, ``gs://``, ``http(s)://``, ``hf://``; a brace
pattern such as ``s3://bucket/cc15m/{00000..01242}.tar``, a glob, or a folder to list): shards are
then read with :mod:`~detclip_bench.datasets.tar_records`, which reopens a shard whose connection
drops at the record after the last one read (docs/data.md, "Shards in object storage").

Images stay undecoded bytes until a transform asks. Samples without an image or with an empty
caption are counted skips; an unreadable tar is a DataError naming the shard.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from detclip_bench.datasets.base import StreamSource
from detclip_bench.datasets.image_text import image_text_sample
from detclip_bench.datasets.object_store import (
    Retry,
    is_url,
    parse_storage_options,
    read_sidecars,
    shard_name,
    shard_urls,
)
from detclip_bench.datasets.tar_records import iter_tar_records
from detclip_bench.errors import DataError, SkipLog
from detclip_bench.schema import DataKind, Sample

__all__ = ["HubWebDataset", "Img2DatasetTars", "img2dataset_declared_size", "list_shards"]

HUB_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def list_shards(path: Path | str, suffix: str, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """The shards a local folder (or one file) or a URL (pattern, glob or folder) holds, in order."""
    if is_url(path):
        return shard_urls(str(path), suffix, storage_options or {})
    path = Path(path)
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise DataError(str(path), "-", "no such file or folder")
    shards = sorted(str(p) for p in path.glob(f"*{suffix}"))
    if not shards:
        raise DataError(str(path), "-", f"no *{suffix} shards in this folder")
    return shards


def _stats_sidecar(shard: str) -> str:
    """img2dataset's ``NNNNN_stats.json`` beside shard ``NNNNN.<ext>`` (a path or a URL)."""
    folder, sep, name = shard.rpartition("/")
    return f"{folder}{sep}{name.rsplit('.', 1)[0]}_stats.json"


def _read_local(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def img2dataset_declared_size(shards: list[str], storage_options: Mapping[str, Any] | None = None) -> int | None:
    """Sum of img2dataset's ``successes`` over the shards' ``_stats.json`` sidecars (None if any is missing);
    URL sidecars are fetched concurrently through fsspec."""
    sidecars = [_stats_sidecar(s) for s in shards]
    if sidecars and is_url(sidecars[0]):
        blobs = read_sidecars(sidecars, storage_options or {})
    else:
        blobs = [_read_local(s) for s in sidecars]
    total = 0
    for blob in blobs:
        try:
            total += int(orjson.loads(blob)["successes"])
        except (TypeError, orjson.JSONDecodeError, KeyError, ValueError):
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


class _TarStream(StreamSource):
    """What both tar formats share: shards from a folder or a URL, fsspec options, retries, and
    :meth:`read_tar` (records of one shard → samples)."""

    kind = DataKind.IMAGE_TEXT
    reads_urls = True

    def __init__(
        self,
        path,
        *,
        storage_options: Mapping[str, Any] | str | None = None,
        retries: int = 5,
        backoff_s: float = 1.0,
        skip_log: SkipLog | None = None,
    ) -> None:
        super().__init__(path, skip_log)
        self.storage_options = parse_storage_options(storage_options, where=str(path))
        self.retry = Retry(attempts=int(retries), backoff_s=float(backoff_s))
        self._shards = list_shards(self.path, ".tar", self.storage_options)

    def shards(self) -> list[str]:
        return self._shards

    def read_tar(self, shard: str, part: tuple[int, int], start: int, image_exts: tuple[str, ...]) -> Iterator[Sample]:
        """Samples of ``shard``'s records from position ``start`` on (every n-th for ``part``), the image
        being the first of ``image_exts`` a record has."""
        try:
            for rec in iter_tar_records(
                shard, start=start, part=part, storage_options=self.storage_options, retry=self.retry
            ):
                meta = _meta(rec.fields.get("json"))
                image = next((rec.fields[e] for e in image_exts if e in rec.fields), None)
                sample = image_text_sample(
                    source=self.format_name,
                    shard=shard,
                    key=rec.key,
                    image=image,
                    caption=rec.fields.get("txt"),
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


class Img2DatasetTars(_TarStream):
    """img2dataset ``--output_format webdataset`` output (format ``img2dataset-wds``) → IMAGE_TEXT stream.

    In: a folder of ``NNNNN.tar`` shards (or one tar), or a URL read through fsspec (a brace
    pattern ``s3://bucket/cc15m/{00000..01242}.tar``, a glob, a folder to list, or one shard;
    ``s3://``, ``gs://``, ``http(s)://``, ``hf://``, ...). Each record is ``<key>.jpg``, ``<key>.txt``
    (caption) and ``<key>.json`` (img2dataset metadata); ``NNNNN_stats.json`` sidecars, when all
    present, give :meth:`declared_size` without reading the tars (fetched concurrently for URLs).
    Records without image bytes or with a missing or empty caption are counted skips; an unreadable
    tar is a DataError naming the shard. :meth:`iter_shard`'s ``part=(k, n)`` keeps every n-th
    record of a shard and ``start`` begins at that record's position in the shard.

    A URL shard whose connection drops is reopened at the record after the last one read (by a
    ranged read where the backend allows, else by reading past the records already read), at most
    ``retries`` times per shard read with exponential backoff from ``backoff_s``, each retry
    logged; then a DataError names the URL. Credentials and endpoints: ``storage_options``, else
    the backend's environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
    ``FSSPEC_S3_ENDPOINT_URL``, ``HF_TOKEN``, ...).

    Out: each :class:`~detclip_bench.schema.Sample` fills ``kind`` = IMAGE_TEXT, ``source``,
    ``record_id`` = the record's key, ``image`` = the undecoded bytes (its path is the shard,
    named in decode errors), ``width``/``height`` from the json (0 if absent), ``caption``
    (stripped) and ``meta`` = the parsed json. No concepts: the model extracts noun phrases.

    Args:
        path: a folder of ``.tar`` shards, one shard, or a URL (pattern, glob, folder or shard).
        storage_options: fsspec options for URLs (a dict or its JSON text), e.g.
            ``{"endpoint_url": "http://minio:9000", "key": ..., "secret": ...}`` for s3.
        retries: reopenings of a URL shard after dropped connections, per shard read.
        backoff_s: the wait before the first reopening, doubled for each next one (at most 30 s).
        skip_log: the :class:`~detclip_bench.errors.SkipLog` counting skipped records.
    """

    format_name = "img2dataset-wds"

    def declared_size(self) -> int | None:
        return img2dataset_declared_size(self._shards, self.storage_options)

    def iter_shard(self, shard: str, part: tuple[int, int] = (0, 1), *, start: int = 0) -> Iterator[Sample]:
        return self.read_tar(shard, part, start, ("jpg",))


class HubWebDataset(_TarStream):
    """A hub webdataset repo such as ``pixparse/cc3m-wds`` (format ``hf-webdataset``) → IMAGE_TEXT stream.

    In: a local copy (or mount) of the repo — a folder of ``.tar`` shards, or one tar — read shard by
    shard with ``datasets.load_dataset("webdataset", ..., streaming=True)``; or a URL read through
    fsspec (``hf://datasets/pixparse/cc3m-wds/cc3m-train-{0000..0575}.tar``, ``s3://...``, a glob or
    a folder to list), whose shards are read record by record with the retries, backoff and
    credentials of :class:`Img2DatasetTars` (``datasets`` cannot resume a shard mid-way). Each record
    is an image (``jpg``, ``jpeg``, ``png`` or ``webp``), ``txt`` and optionally ``json``; the image
    stays undecoded. Skips, ``part=(k, n)`` and ``start`` as in :class:`Img2DatasetTars`.

    Out: samples filled as by :class:`Img2DatasetTars` (``record_id`` = the record's ``__key__``);
    a URL and a local copy of the same shards give equal samples.

    Args:
        path: the repo folder, one shard, or a URL (pattern, glob, folder or shard).
        split: keeps the ``*-<split>-*.tar`` shards when the file names carry splits (else all).
        storage_options, retries, backoff_s: for URLs, as in :class:`Img2DatasetTars`.
        skip_log: the :class:`~detclip_bench.errors.SkipLog` counting skipped records.
    """

    format_name = "hf-webdataset"

    def __init__(
        self,
        path,
        *,
        split: str = "train",
        storage_options: Mapping[str, Any] | str | None = None,
        retries: int = 5,
        backoff_s: float = 1.0,
        skip_log: SkipLog | None = None,
    ) -> None:
        super().__init__(path, storage_options=storage_options, retries=retries, backoff_s=backoff_s, skip_log=skip_log)
        named = [s for s in self._shards if f"-{split}-" in shard_name(s)]
        self.split = split
        self._shards = named or self._shards

    def iter_shard(self, shard: str, part: tuple[int, int] = (0, 1), *, start: int = 0) -> Iterator[Sample]:
        if is_url(shard):
            return self.read_tar(shard, part, start, HUB_IMAGE_EXTS)
        return self._read_datasets(shard, part, start)

    def _read_datasets(self, shard: str, part: tuple[int, int], start: int) -> Iterator[Sample]:
        from datasets import Image, load_dataset

        ds = load_dataset("webdataset", data_files={self.split: [shard]}, split=self.split, streaming=True)
        image_col = next((c for c in HUB_IMAGE_EXTS if c in (ds.features or {})), "jpg")
        if ds.features and image_col in ds.features:
            ds = ds.cast_column(image_col, Image(decode=False))
        k, n = part
        for i, rec in enumerate(ds):
            if i < start or i % n != k:
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
