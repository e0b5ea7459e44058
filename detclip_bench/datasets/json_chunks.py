"""Parse a huge COCO-style json's ``annotations`` array in pieces, so it is never all dicts at once.

O365 v2's train json is ~6 GB, almost all of it ``annotations``: flat objects (numbers and lists
of numbers). We memory-map the file, find the array, and cut it after a ``}`` that is followed
by ``,`` — for flat objects every ``}`` ends an element. Each piece is parsed by orjson on its
own and the rest of the document (with ``"annotations": []``) is parsed separately.

Exactness: the pieces are contiguous and separated only by whitespace and commas, so if every
piece parses as a sequence of JSON values and the remainder parses with an empty annotations
list, the pieces are exactly the original array. If any of that fails (nested objects such as
COCO's RLE ``segmentation``, braces in strings, a malformed file) :class:`NotChunkable` is
raised and the caller parses the whole file instead (which also names malformed-JSON errors).
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from pathlib import Path

import orjson

__all__ = ["NotChunkable", "annotation_pieces"]

_ANN_KEY = re.compile(rb'"annotations"\s*:\s*\[')
_ARRAY_END = re.compile(rb"\}\s*\]")
_WS = b" \t\r\n"


class NotChunkable(Exception):
    pass


def _skip_ws(buf, pos: int) -> int:
    n = len(buf)
    while pos < n and buf[pos] in _WS:
        pos += 1
    return pos


def _ranges(mm, start: int, chunk_bytes: int) -> tuple[list[tuple[int, int]], int]:
    """Byte ranges of the pieces, and the offset of the array's closing ``]``."""
    n = len(mm)
    q = _skip_ws(mm, start)
    if mm[q : q + 1] == b"]":
        return [], q
    ranges, pos, step = [], start, chunk_bytes
    while True:
        stop = min(pos + step, n)
        closing = _ARRAY_END.search(mm, pos, stop)
        if closing is not None:  # the last element ends the array (the window may run past it)
            ranges.append((pos, closing.start() + 1))
            return ranges, closing.end() - 1
        last = mm.rfind(b"}", pos, stop)
        if last < 0:
            if stop >= n:
                raise NotChunkable("no object end found")
            step *= 2
            continue
        q = _skip_ws(mm, last + 1)
        nxt = mm[q : q + 1]
        ranges.append((pos, last + 1))
        if nxt == b"]":
            return ranges, q
        if nxt != b",":
            raise NotChunkable("unexpected byte after an annotation")
        pos, step = q + 1, chunk_bytes


def annotation_pieces(path: Path, chunk_bytes: int = 64 << 20) -> tuple[dict, Iterator[list]]:
    """The document without annotations, and an iterator over lists of annotation dicts."""
    with open(path, "rb") as fh:
        try:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # empty file
            raise NotChunkable(str(exc)) from exc
    m = _ANN_KEY.search(mm)
    if m is None:
        raise NotChunkable("no annotations array")
    ranges, end = _ranges(mm, m.end(), chunk_bytes)
    try:
        head = orjson.loads(mm[: m.start()] + b'"annotations": []' + mm[end + 1 :])
    except orjson.JSONDecodeError as exc:
        raise NotChunkable(str(exc)) from exc
    if not isinstance(head, dict) or head.get("annotations") != []:
        raise NotChunkable("annotations key not at the top level")

    def pieces() -> Iterator[list]:
        for a, b in ranges:
            try:
                yield orjson.loads(b"[" + mm[a:b] + b"]")
            except orjson.JSONDecodeError as exc:
                raise NotChunkable(str(exc)) from exc

    return head, pieces()
