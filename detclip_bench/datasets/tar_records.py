"""Webdataset tars as records, from a local file or a URL, from any record on.

A record is a run of consecutive regular members sharing a key, ``<key>.<ext>``: the key runs to the
first dot of the file name (folders kept), extensions are lower-cased and ``__…__`` archive metadata is
left out. These are the webdataset library's conventions (its ``base_plus_ext`` splits the names), and
tests/datasets/test_remote_shards.py checks that both read the same records.

For a URL the byte offset where each record starts is remembered, so a read that loses its connection
reopens there (by seeking; from the start, passing over the records already read, when the backend
cannot seek or the tar is compressed) — see :func:`~detclip_bench.datasets.object_store.read_resuming`.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from detclip_bench.datasets.object_store import Position, Retry, is_url, open_remote, read_resuming
from detclip_bench.errors import DataError

__all__ = ["TarRecord", "iter_tar_records"]

_ARCHIVE_META = re.compile(r"__[^/]*__($|/)")


class TarRecord(NamedTuple):
    """One record: its position in the shard (0-based, every record counted), key and member bytes by extension."""

    index: int
    key: str
    fields: dict[str, bytes]


def iter_tar_records(
    shard: str,
    *,
    start: int = 0,
    part: tuple[int, int] = (0, 1),
    storage_options: Mapping[str, Any] | None = None,
    retry: Retry | None = None,
) -> Iterator[TarRecord]:
    """The records of ``shard`` at positions ``i >= start`` with ``i % n == k`` for ``part=(k, n)``.

    A URL shard survives dropped connections as ``retry`` says (default :class:`Retry`); a local file is
    read once (its errors are not transient), seeking: members are read straight from the file and the ones
    outside the selection are seeked past. Records outside the selection are passed over, not extracted.
    """

    def wanted(i: int) -> bool:
        return i >= start and i % part[1] == part[0]

    if not is_url(shard):
        with open(shard, "rb") as fh:
            for _, rec in _records(fh, shard, 0, Position(0, 0), wanted, seekable=True):
                if rec is not None:
                    yield rec
        return

    def read(pos: Position) -> Iterator[tuple[Position, TarRecord | None]]:
        with open_remote(shard, pos.offset, storage_options or {}) as src:
            yield from _records(src, shard, src.pos, pos, wanted)

    yield from read_resuming(shard, read, start=Position(0, 0), retry=retry or Retry())


def _records(
    fileobj, shard: str, base: int, pos: Position, wanted: Callable[[int], bool], *, seekable: bool = False
) -> Iterator[tuple[Position, TarRecord | None]]:
    """(position of the next record, the record or None when passed over) for each record from ``pos`` on;
    ``fileobj`` starts at byte ``base``: ``pos.offset``, or 0 to read from the start.

    ``seekable`` (a local file) opens the tar in random-access mode: a member's bytes are read from the file in
    one piece, where stream mode passes them through tarfile's 10 KiB buffer and joins them (two more copies of
    every image and Python work per block); both modes read the same members and fail on the same damage."""
    from webdataset.tariterators import base_plus_ext  # deferred: webdataset's import pulls in more

    first = pos.index if base and base == pos.offset else 0
    with tarfile.open(fileobj=fileobj, mode="r:*" if seekable else "r|*") as tar:
        offsets = getattr(tar.fileobj, "comptype", None) == "tar"  # byte offsets mean nothing inside gzip
        key, index, fields, take = None, first - 1, {}, False
        for info in tar:
            tar.members = []  # a stream-mode TarFile keeps every member it has read otherwise
            if not info.isreg() or _ARCHIVE_META.match(info.name):
                continue
            prefix, ext = base_plus_ext(info.name)
            if prefix is None:
                continue
            if prefix != key:
                if key is not None:
                    nxt = Position(index + 1, base + info.offset if offsets else None)
                    yield nxt, TarRecord(index, key, fields) if take else None
                key, index, fields = prefix, index + 1, {}
                take = index >= pos.index and wanted(index)
            ext = ext.lower()
            if ext in fields:
                raise DataError(
                    shard, key, f"two members named {key}.{ext} in one record (a duplicated file in the tar)"
                )
            fields[ext] = tar.extractfile(info).read() if take else b""
    if key is not None:
        yield Position(index + 1, None), TarRecord(index, key, fields) if take else None
