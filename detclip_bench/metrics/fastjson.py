"""A strict, columnar reader for COCO/LVIS results files: JSON bytes to numpy columns, with no Python object
per detection.

It is the fast route of :func:`~detclip_bench.metrics.score.read_results`, and it is *sound, not complete*: it
either returns what the msgspec route returns (the same records in the same order, the same int64 ids,
bit-identical float64 values), or it declines and the caller runs the msgspec route, which then decides and
words any error. It declines on everything it does not check itself: JSON outside a strict subset (a string
with an escape, a control or a non-ASCII byte), a missing, repeated or mistyped required key, an id of more
than 18 digits, an empty list, an overflowing number, or more numbers than it leaves to Python. What it
accepts is valid JSON that msgspec decodes into the same records (``tests/metrics/test_fastjson.py`` runs
both routes on tricky and on broken inputs).

Numbers are converted exactly, i.e. correctly rounded as msgspec and ``float()`` convert them (the method is
described in ``_fastjson.c``); the few the scan cannot decide (more than 19 significant digits, a possible
tie, a subnormal or an out-of-range exponent) are converted here by ``float(text)``, an integer token by
``float(int(text))`` as msgspec does (``-0`` is ``0.0``).

The scan is C (``_fastjson.c``, built with the package; ``available()`` is False where it could not be
built, and ``score`` then reads with msgspec alone). It releases the GIL, and runs in two threads, one per
half of the file, on files above a few MiB. It writes boxes as xyxy (``x + w``, the same IEEE additions as
the msgspec route's numpy) and declines a file with a negative width or height, whose error msgspec words.
"""

from __future__ import annotations

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from detclip_bench.metrics.pages import fresh

try:
    from detclip_bench.metrics import _fastjson
except ImportError:  # not built (no C compiler at install time)
    _fastjson = None

__all__ = ["available", "read_columns"]

_HARD_MIN = 1 << 16  # numbers one scan may leave to Python before it declines: this many, or one per 256 bytes
_MIN_RECORD = 57  # {"image_id":0,"category_id":0,"bbox":[0,0,0,0],"score":0}
_SPLIT_ABOVE = 1 << 22  # files smaller than this are scanned in one piece
_BOUNDARY = re.compile(rb"\}[ \t\r\n]*,[ \t\r\n]*\{")


def _power_tables(qmin: int, qmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows q = qmin..qmax: F = floor(5**q * 2**s), F in [2**127, 2**128), as (high, low) 64-bit halves, and s."""
    hi, lo, shift = [], [], []
    for q in range(qmin, qmax + 1):
        if q >= 0:
            p = 5**q
            s = 128 - p.bit_length()
            f = p << s if s >= 0 else p >> -s
        else:
            d = 5**-q
            s = 127 + d.bit_length()
            f = (1 << s) // d
        hi.append(f >> 64)
        lo.append(f & (2**64 - 1))
        shift.append(s)
    return np.array(hi, np.uint64), np.array(lo, np.uint64), np.array(shift, np.int64)


if _fastjson is not None:
    _fastjson.set_tables(*_power_tables(_fastjson.QMIN, _fastjson.QMAX))


def available() -> bool:
    """Whether the compiled scan was built (else ``read_columns`` always declines)."""
    return _fastjson is not None


def _fix_hard(raw: memoryview, hard: np.ndarray, box: np.ndarray, score: np.ndarray) -> bool:
    """Convert the numbers the scan left to Python, as msgspec does, then turn the rows whose bbox waited for
    them into xyxy. False on an overflow (msgspec raises) or a negative width or height (the caller raises)."""
    for slot, a, b, is_int in hard.tolist():
        text = bytes(raw[a:b])
        try:
            value = float(int(text)) if is_int else float(text)
        except OverflowError:  # an integer beyond the largest double
            return False
        if math.isinf(value):
            return False
        k, j = divmod(slot, 5)
        if j == 4:
            score[k] = value
        else:
            box[k, j] = value
    waited = hard[hard[:, 0] % 5 < 4, 0] // 5
    if len(waited):  # (np.unique only here: its first call imports numpy.ma, ~10 ms)
        rows = np.unique(waited)
        xywh = box[rows]
        if xywh[:, 2:].min() < 0:
            return False
        xywh[:, 2:] += xywh[:, :2]
        box[rows] = xywh
    return True


def _read(path: str | os.PathLike, pad: int) -> np.ndarray:
    """The file's bytes and ``pad`` NUL bytes, read straight into a numpy buffer."""
    size = os.stat(path).st_size
    buf = fresh(size + pad, np.uint8)
    with open(path, "rb", buffering=0) as f:
        got = 0
        view = memoryview(buf)
        while got < size:
            n = f.readinto(view[got:size])
            if not n:
                break
            got += n
    buf[got : got + pad] = 0
    return buf[: got + pad]


Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # image_ids, category_ids, scores, boxes_xyxy (n, 4)


def read_columns(path: str | os.PathLike, *, threads: int = 2) -> tuple[Columns | None, memoryview]:
    """(the records' columns in file order, boxes already xyxy; the file's bytes), or (None, the file's bytes)
    when the fast route declines: the bytes then go to the msgspec route, which also raises every error (a
    negative width or height included)."""
    mod = _fastjson
    pad = 32 if mod is None else mod.PAD
    buf = _read(Path(path), pad)
    size = len(buf) - pad
    raw = memoryview(buf)[:size]
    if mod is None:
        return None, raw
    cap = size // _MIN_RECORD + 1
    hard_cap = max(_HARD_MIN, size // 256)
    img, cat, score = fresh(cap, np.int64), fresh(cap, np.int64), fresh(cap, np.float64)
    box = fresh(cap, np.float64, 4)
    cols, n, hard = (img, cat, score, box), -1, None
    if threads > 1 and size > _SPLIT_ABOVE:
        # A record start near the middle, guessed from the bytes; the first half's scan must arrive exactly
        # there at a record start, or the halves are discarded and the file is scanned in one piece.
        found = _BOUNDARY.search(raw[size // 2 : size // 2 + (1 << 20)])
        if found is not None:
            mid = size // 2 + found.end() - 1
            off = mid // _MIN_RECORD + 1  # the second half writes from this row on
            hard = [np.empty((hard_cap, 4), np.int64) for _ in range(2)]
            with ThreadPoolExecutor(1) as pool:
                second = pool.submit(
                    mod.scan, buf, mid, False, size + 1, img[off:], cat[off:], box[off:], score[off:], hard[1]
                )
                s1, k1, p1, h1, neg1 = mod.scan(buf, 0, True, mid, img, cat, box, score, hard[0])
                s2, k2, _, h2, neg2 = second.result()
            if s1 == mod.OK_STOP and p1 == mid and s2 == mod.OK_END:
                if neg1 >= 0 or neg2 >= 0:
                    return None, raw
                # Close the gap: forward copies in blocks no longer than the gap never overlap (no temporary).
                step = off - k1
                for a in range(0, k2, step):
                    b = min(a + step, k2)
                    for col in cols:
                        col[k1 + a : k1 + b] = col[off + a : off + b]
                moved = hard[1][:h2].copy()
                moved[:, 0] += 5 * k1  # its rows now start at k1
                n, hard = k1 + k2, np.concatenate([hard[0][:h1], moved])
    if n < 0:
        hard = np.empty((hard_cap, 4), np.int64)
        status, n, _, nh, negative = mod.scan(buf, 0, True, size + 1, img, cat, box, score, hard)
        if status != mod.OK_END or negative >= 0:
            return None, raw
        hard = hard[:nh]
    if not _fix_hard(raw, hard, box, score):
        return None, raw
    return (img[:n], cat[:n], score[:n], box[:n]), raw
