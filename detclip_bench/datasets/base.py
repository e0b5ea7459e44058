"""The two shapes every loader takes: a map-style source (random access over a compact index) and a
stream source (an ordered list of shards, each iterated start to end).

Both yield :class:`~detclip_bench.schema.Sample`. Map sources are sharded with a distributed
sampler, streams by splitting shards (and records within a shard) over (rank, worker); see
:mod:`detclip_bench.datasets.sharding`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from detclip_bench.datasets.object_store import is_url, shard_name
from detclip_bench.errors import DataError, SkipLog
from detclip_bench.schema import Concept, DataKind, Sample

__all__ = ["MapSource", "StreamSource", "first_existing"]


class _Source:
    format_name: ClassVar[str] = "?"
    kind: DataKind = DataKind.DETECTION
    reads_urls: ClassVar[bool] = False  # True: ``path`` may be an fsspec URL (docs/data.md, object storage)

    def __init__(self, path, skip_log: SkipLog | None = None) -> None:
        if is_url(path) and not self.reads_urls:
            raise DataError(
                str(path), "-", f"format {self.format_name!r} reads local files only, not URLs (docs/data.md)"
            )
        self.path: Path | str = str(path) if is_url(path) else Path(path)  # a URL stays as written
        name = self.path.name if isinstance(self.path, Path) else shard_name(self.path)
        self.skips = skip_log if skip_log is not None else SkipLog(f"{self.format_name}:{name}")

    def vocabulary(self) -> tuple[Concept, ...]:
        """The dataset's full concept list (categories or classes); empty for caption data."""
        return ()

    def summary(self) -> dict:
        vocab = self.vocabulary()
        return {
            "format": self.format_name,
            "path": str(self.path),
            "kind": self.kind.value,
            "classes": len(vocab),
            "class_names": [c.name for c in vocab[:50]],
            "skipped": self.skips.report(),
        }


class MapSource(_Source):
    """Random access by integer index; ``len`` is known after opening."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def summary(self) -> dict:
        return {**super().summary(), "records": len(self)}


class StreamSource(_Source):
    """Shards read in order. ``part=(k, n)`` keeps every n-th record starting at k, so consumers
    that share one shard (fewer shards than workers × ranks) still read each record exactly once.
    Sources that can begin inside a shard take ``iter_shard(shard, part, start=i)``: records from
    position ``i`` of the shard on (positions count every record, before ``part`` and skips)."""

    def shards(self) -> list[str]:
        raise NotImplementedError

    def iter_shard(self, shard: str, part: tuple[int, int] = (0, 1)) -> Iterator[Sample]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Sample]:
        for shard in self.shards():
            yield from self.iter_shard(shard)

    def summary(self) -> dict:
        return {**super().summary(), "shards": len(self.shards())}


def first_existing(candidates, fallback: Path) -> Path:
    """The first candidate folder that exists (default image roots of the usual layouts)."""
    for cand in candidates:
        if cand is not None and Path(cand).is_dir():
            return Path(cand)
    return fallback
