"""The original Conceptual Captions TSVs → IMAGE_TEXT records (caption + URL, no pixels).

CC3M's ``Train_GCC-training.tsv`` is ``caption<TAB>url``; CC12M's ``cc12m.tsv`` is
``url<TAB>caption``; neither has a header. The order is detected from content (the column
whose cells are all http(s) URLs in the first ``sniff_rows`` rows) or given as
``columns=("caption", "url")``; never guessed. If neither or both columns look like URLs, or a
later row has no URL where the URL column should be, that is a DataError naming the line and
asking for ``columns=``. An ``img2dataset``-style header line (``caption\\turl``) is honoured.
Empty captions are counted skips. These records carry the URL in ``meta["url"]`` and no image:
fetch images with img2dataset and read its output with ``img2dataset-wds``/``-parquet``.
"""

from __future__ import annotations

from collections.abc import Iterator

from detclip_bench.datasets.base import StreamSource
from detclip_bench.errors import DataError
from detclip_bench.schema import DataKind, ImageRef, Sample

__all__ = ["ConceptualCaptionsTsv", "sniff_columns"]

COLUMN_ORDERS = (("caption", "url"), ("url", "caption"))


def _is_url(cell: str) -> bool:
    return cell.startswith(("http://", "https://"))


def _split(line: str, path: str, lineno: int) -> list[str]:
    cells = line.rstrip("\r\n").split("\t")
    if len(cells) != 2:
        raise DataError(path, f"line {lineno}", f"expected 2 tab-separated columns, found {len(cells)}")
    return cells


def sniff_columns(path: str, rows: int = 100) -> tuple[tuple[str, str], bool]:
    """(column order, has header) from the first ``rows`` rows."""
    header = False
    votes = [0, 0]
    seen = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            cells = _split(line, path, lineno)
            if lineno == 1 and tuple(c.strip().lower() for c in cells) in COLUMN_ORDERS:
                return tuple(c.strip().lower() for c in cells), True  # type: ignore[return-value]
            votes[0] += _is_url(cells[0])
            votes[1] += _is_url(cells[1])
            seen += 1
            if seen >= rows:
                break
    if seen and votes[1] == seen and votes[0] == 0:
        return ("caption", "url"), header
    if seen and votes[0] == seen and votes[1] == 0:
        return ("url", "caption"), header
    raise DataError(
        path,
        f"lines 1-{seen}",
        "cannot tell which column holds the URLs "
        f"(URL-like cells: column 1 {votes[0]}/{seen}, column 2 {votes[1]}/{seen}); "
        "pass columns=('caption','url') for CC3M or ('url','caption') for CC12M (--columns)",
    )


class ConceptualCaptionsTsv(StreamSource):
    """The original Conceptual Captions TSV (format ``cc-tsv``) → IMAGE_TEXT records without pixels.

    On disk: one headerless two-column TSV, ``caption<TAB>url`` (CC3M) or ``url<TAB>caption``
    (CC12M); the URL column is detected from the first ``sniff_rows`` rows unless ``columns`` is
    given, and an img2dataset-style header line is honoured. A stream of one shard (the file);
    ``part=(k, n)`` keeps every n-th line.

    Each :class:`~detclip_bench.schema.Sample` fills: ``kind`` = IMAGE_TEXT, ``source``,
    ``record_id`` = ``"line <n>"``, ``caption`` (stripped; empty ones are counted skips) and
    ``meta`` = ``{"url"}``. ``image`` is an empty :class:`~detclip_bench.schema.ImageRef`
    (loading it raises): fetch the images with img2dataset and read them with
    ``img2dataset-wds`` / ``img2dataset-parquet``.

    Args:
        path: the TSV file.
        columns: ``("caption", "url")`` or ``("url", "caption")`` (or ``"caption,url"``); None detects.
        sniff_rows: rows inspected when detecting the column order.
        skip_log: the :class:`~detclip_bench.errors.SkipLog` counting skipped lines.
    """

    format_name = "cc-tsv"
    kind = DataKind.IMAGE_TEXT

    def __init__(self, path, *, columns=None, sniff_rows: int = 100, skip_log=None) -> None:
        super().__init__(path, skip_log)
        if not self.path.is_file():
            raise DataError(str(self.path), "-", "TSV not found")
        if isinstance(columns, str):
            columns = tuple(c.strip() for c in columns.split(","))
        if columns is not None and tuple(columns) not in COLUMN_ORDERS:
            raise ValueError(f"columns must be one of {COLUMN_ORDERS}, got {columns!r}")
        if columns is None:
            self.columns, self.header = sniff_columns(str(self.path), int(sniff_rows))
        else:
            self.columns, self.header = tuple(columns), False
            first = self.path.open(encoding="utf-8", errors="replace").readline()
            self.header = tuple(c.strip().lower() for c in first.rstrip("\r\n").split("\t")) in COLUMN_ORDERS
        self._url_col = self.columns.index("url")

    def shards(self) -> list[str]:
        return [str(self.path)]

    def iter_shard(self, shard: str, part: tuple[int, int] = (0, 1)) -> Iterator[Sample]:
        k, n = part
        with open(shard, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if (lineno - 1) % n != k or (lineno == 1 and self.header) or not line.strip():
                    continue
                cells = _split(line, shard, lineno)
                url, caption = cells[self._url_col].strip(), cells[1 - self._url_col].strip()
                if not _is_url(url):
                    raise DataError(
                        shard,
                        f"line {lineno}",
                        f"no URL in the {self.columns} 'url' column "
                        f"({url[:60]!r}); wrong column order? pass columns= explicitly",
                    )
                if not caption:
                    self.skips.skip(shard, f"line {lineno}", "empty caption")
                    continue
                yield Sample(
                    kind=DataKind.IMAGE_TEXT,
                    source=self.format_name,
                    record_id=f"line {lineno}",
                    image=ImageRef(),
                    caption=caption,
                    meta={"url": url},
                )
