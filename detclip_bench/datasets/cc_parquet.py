"""img2dataset ``--output_format parquet`` shards → IMAGE_TEXT stream.

Rows hold the metadata (``url``, ``caption``, ``key``, ``status``, ``width``, ...), the caption as
``txt`` and the image bytes in ``jpg``. Rows with ``status != "success"`` or a null ``jpg`` are
failed downloads: counted skips, as are empty captions. Read in record batches, so a shard
is never fully in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

from detclip_bench.datasets.base import StreamSource
from detclip_bench.datasets.image_text import image_text_sample
from detclip_bench.datasets.webdataset_tars import img2dataset_declared_size, list_shards
from detclip_bench.errors import DataError
from detclip_bench.schema import DataKind, Sample

__all__ = ["Img2DatasetParquet"]

_META = ("url", "key", "status", "error_message", "width", "height", "original_width", "original_height", "sha256")


class Img2DatasetParquet(StreamSource):
    """img2dataset ``--output_format parquet`` output (format ``img2dataset-parquet``) → IMAGE_TEXT stream.

    On disk: a folder of ``*.parquet`` shards (or one file), each row with the image bytes in
    ``image_column``, the caption in ``txt`` (or ``caption``) and img2dataset's metadata columns;
    ``NNNNN_stats.json`` sidecars, when all present, give :meth:`declared_size`. Rows whose
    ``status`` is not ``"success"``, without image bytes or with an empty caption are counted skips.
    Shards are read in record batches; ``part=(k, n)`` keeps every n-th row of a shard.

    Each :class:`~detclip_bench.schema.Sample` fills: ``kind`` = IMAGE_TEXT, ``source``,
    ``record_id`` = the row's ``key`` (else ``"row <i>"``), ``image`` = the bytes (its path is the
    shard, named in decode errors), ``width``/``height`` from the metadata (0 if absent),
    ``caption`` (stripped) and ``meta`` = the row's metadata columns (``url``, ``key``, ``status``,
    ``width``, ``height``, ``original_width``, ...). No concepts: the model extracts noun phrases.

    Args:
        path: a folder of parquet shards, or one shard.
        image_column: the column holding the image bytes.
        batch_size: rows per record batch read from a shard.
        skip_log: the :class:`~detclip_bench.errors.SkipLog` counting skipped rows.
    """

    format_name = "img2dataset-parquet"
    kind = DataKind.IMAGE_TEXT

    def __init__(self, path, *, image_column: str = "jpg", batch_size: int = 256, skip_log=None) -> None:
        super().__init__(path, skip_log)
        self._shards = list_shards(self.path, ".parquet")
        self.image_column, self.batch_size = image_column, batch_size

    def shards(self) -> list[str]:
        return self._shards

    def declared_size(self) -> int | None:
        return img2dataset_declared_size(self._shards)

    def iter_shard(self, shard: str, part: tuple[int, int] = (0, 1)) -> Iterator[Sample]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(shard)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(shard, "-", f"unreadable parquet shard: {exc}") from exc
        names = set(pf.schema_arrow.names)
        if self.image_column not in names:
            raise DataError(shard, "-", f"no {self.image_column!r} image column (columns: {sorted(names)})")
        caption_col = "txt" if "txt" in names else "caption"
        cols = [c for c in (self.image_column, caption_col, *_META) if c in names]
        k, n = part
        i = 0
        for batch in pf.iter_batches(batch_size=self.batch_size, columns=cols):
            for row in batch.to_pylist():
                i += 1
                if (i - 1) % n != k:
                    continue
                key = str(row.get("key") or f"row {i - 1}")
                if row.get("status", "success") != "success":
                    self.skips.skip(shard, key, f"download status {row.get('status')!r}")
                    continue
                sample = image_text_sample(
                    source=self.format_name,
                    shard=shard,
                    key=key,
                    image=row.get(self.image_column),
                    caption=row.get(caption_col),
                    meta={m: row[m] for m in _META if m in row},
                    skips=self.skips,
                    width=row.get("width") or 0,
                    height=row.get("height") or 0,
                )
                if sample is not None:
                    yield sample
