"""Shards in object storage: fsspec URLs (``s3://``, ``gs://``, ``http(s)://``, ``hf://``, ...), brace
patterns over them, and shard reads that survive a dropped connection.

A stream loader takes a local folder or a URL. :func:`shard_urls` turns the URL into the ordered shard
list: a brace pattern (``s3://bucket/cc15m/{00000..01242}.tar``) is expanded without touching the
network, a glob or a "folder" is listed once. :func:`read_resuming` reopens a shard after a dropped
connection at the record after the last one read, a bounded number of times with exponential backoff,
then raises a DataError naming the URL.

Credentials and endpoints are fsspec's: the ``storage_options`` a loader is given (a dict, or its JSON
text from a manifest or ``--option``), else each backend's own environment (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``FSSPEC_S3_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``, ``HF_TOKEN``, ...).
fsspec is imported on first use, so local reads never load it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import orjson

from detclip_bench.errors import DataError

__all__ = [
    "Dropped",
    "Position",
    "Retry",
    "TrackedReader",
    "is_url",
    "open_remote",
    "parse_storage_options",
    "read_resuming",
    "read_sidecars",
    "shard_name",
    "shard_urls",
]

log = logging.getLogger("detclip_bench.datasets")

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB = re.compile(r"[*?\[]")
T = TypeVar("T")


def is_url(path: object) -> bool:
    """Whether ``path`` names a location through a URL scheme (read with fsspec), not a local file."""
    return isinstance(path, str) and bool(_SCHEME.match(path))


def shard_name(shard: object) -> str:
    """The last part of a shard's path or URL (``00012.tar``)."""
    return str(shard).rstrip("/").rsplit("/", 1)[-1]


def parse_storage_options(value: Mapping[str, Any] | str | None, *, where: str) -> dict[str, Any]:
    """fsspec ``storage_options`` from a dict or its JSON text (what a manifest or ``--option`` carries)."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DataError(where, "--storage_options", f"not a JSON object: {exc}") from exc
    if not isinstance(parsed, dict):
        raise DataError(where, "--storage_options", f"not a JSON object: {value!r}")
    return parsed


def _filesystem(url: str, storage_options: Mapping[str, Any]):
    """(fsspec filesystem, path within it); a missing backend or unknown scheme is a DataError naming the URL."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **storage_options)
    except ImportError as exc:
        raise DataError(url, "-", f"reading {url.split('://', 1)[0]}:// URLs needs a backend: {exc}") from exc
    except ValueError as exc:
        raise DataError(url, "-", f"fsspec cannot open this URL: {exc}") from exc


def shard_urls(url: str, suffix: str, storage_options: Mapping[str, Any]) -> list[str]:
    """The shard URLs ``url`` names, in order: a brace pattern expanded (no network), a glob listed, a URL
    ending in ``suffix`` as it is, anything else listed as a folder of ``*suffix`` objects."""
    if "{" in url:
        from braceexpand import braceexpand

        return list(braceexpand(url))
    if url.endswith(suffix) and not _GLOB.search(url):
        return [url]
    fs, _ = _filesystem(url, storage_options)
    pattern = url if _GLOB.search(url) else f"{url.rstrip('/')}/*{suffix}"
    try:
        found = sorted(fs.glob(pattern))
    except Exception as exc:  # each backend raises its own types (botocore, aiohttp, HfHubHTTPError, ...)
        raise DataError(url, "-", f"cannot list the shards: {exc!r}") from exc
    if not found:
        raise DataError(
            url, "-", f"no *{suffix} shards here; name them with a brace pattern such as .../{{00000..01242}}{suffix}"
        )
    return [fs.unstrip_protocol(p) for p in found]


def read_sidecars(urls: list[str], storage_options: Mapping[str, Any]) -> list[bytes | None]:
    """The bytes of each URL (None where it is missing or unreadable), fetched concurrently by fsspec."""
    if not urls:
        return []
    fs, _ = _filesystem(urls[0], storage_options)
    paths = [fs._strip_protocol(u) for u in urls]
    try:
        got = fs.cat(paths, on_error="return")
    except Exception as exc:  # backend-specific types; a missing size is not an error for the caller
        log.warning("%s: cannot read the sidecar files: %r", urls[0], exc)
        return [None] * len(urls)
    return [v if isinstance(v, bytes) else None for v in (got.get(p) for p in paths)]


@dataclass(frozen=True)
class Retry:
    """How a dropped read of a URL shard is retried: at most ``attempts`` reopenings per shard read, waiting
    ``backoff_s`` seconds before the first and twice as long before each next one (at most ``max_backoff_s``)."""

    attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def delay(self, failure: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2 ** (failure - 1))


class Dropped(Exception):
    """The byte source failed (connection reset, timeout, a body shorter than announced): worth a retry,
    unlike bad bytes, which are the shard's fault."""


class Position(NamedTuple):
    """Where a shard read resumes: the record's index in the shard and its byte offset (None: unknown)."""

    index: int
    offset: int | None = None


class TrackedReader:
    """A binary file seen through ``read`` only: counts the bytes delivered and turns any failure of the
    underlying read, or an end before the announced ``size``, into :class:`Dropped`."""

    def __init__(self, raw, *, start: int = 0, size: int | None = None) -> None:
        self.raw, self.pos, self.size = raw, start, size

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.raw.read(n)
        except Exception as exc:  # aiohttp, botocore and fsspec each raise their own types
            raise Dropped(f"read failed at byte {self.pos}: {exc!r}") from exc
        if not data and n != 0 and self.size is not None and self.pos < self.size:
            raise Dropped(f"the stream ended at byte {self.pos} of {self.size}")
        self.pos += len(data)
        return data

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> TrackedReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_remote(url: str, offset: int | None, storage_options: Mapping[str, Any]) -> TrackedReader:
    """``url`` opened for reading at byte ``offset`` when the backend can seek there (the reader's ``pos``
    says where it starts: ``offset``, or 0 when it cannot). A missing or forbidden object is a DataError;
    any other failure to open is :class:`Dropped`."""
    fs, path = _filesystem(url, storage_options)
    try:
        raw = fs.open(path, "rb")
    except FileNotFoundError as exc:
        raise DataError(url, "-", "no such shard") from exc
    except PermissionError as exc:
        raise DataError(url, "-", f"access denied (credentials: storage_options or the environment): {exc}") from exc
    except Exception as exc:  # backend-specific connection errors
        raise Dropped(f"cannot open: {exc!r}") from exc
    start = 0
    if offset:
        try:
            raw.seek(offset)
            start = offset
        except (ValueError, OSError):  # a streaming-only file (e.g. HTTP without ranges): read from the start
            start = 0
    size = getattr(raw, "size", None)
    return TrackedReader(raw, start=start, size=size if isinstance(size, int) else None)


def read_resuming(
    url: str,
    read: Callable[[Position], Iterator[tuple[Position, T | None]]],
    *,
    start: Position,
    retry: Retry,
) -> Iterator[T]:
    """The items of ``read(start)``, reopening after :class:`Dropped` at the position after the last record
    seen (``read`` yields each record's next position, with None for records it passes over), so no record
    is repeated or lost. Each retry is logged; the last failure becomes a DataError naming ``url``."""
    pos, failures = start, 0
    while True:
        try:
            for pos_next, item in read(pos):
                pos = pos_next
                if item is not None:
                    yield item
            return
        except Dropped as exc:
            failures += 1
            if failures > retry.attempts:
                raise DataError(
                    url,
                    "-",
                    f"connection dropped {failures} times; gave up after {retry.attempts} retries at record "
                    f"index {pos.index}: {exc}",
                ) from exc
            wait = retry.delay(failures)
            log.warning(
                "%s: connection dropped at record index %d (%s); reopening in %.2f s (retry %d of %d)",
                url,
                pos.index,
                exc,
                wait,
                failures,
                retry.attempts,
            )
            time.sleep(wait)
