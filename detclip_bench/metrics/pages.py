"""Large buffers whose pages arrive as they are first written, without numpy's huge-page advice."""

from __future__ import annotations

import mmap

import numpy as np

__all__ = ["fresh"]

# Private, as np.empty's memory is: a forked process gets copies, not the same pages.
_PRIVATE = {"flags": mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS} if hasattr(mmap, "MAP_ANONYMOUS") else {}


def fresh(count: int, dtype, width: int = 0) -> np.ndarray:
    """``count`` zeros of ``dtype`` (rows of ``width`` when given) in an anonymous mapping: pages arrive on first
    touch, as with np.empty, but numpy's huge-page advice makes those first faults stall in compaction
    (measured: a 555 MiB results file read in 1.1-1.2 s this way, 1.3-2.3 s through np.empty; 2.9M engine rows
    written in 0.3 s against 0.6 s)."""
    items = count * max(width, 1)
    flat = np.frombuffer(mmap.mmap(-1, max(items, 1) * np.dtype(dtype).itemsize, **_PRIVATE), dtype)[:items]
    return flat.reshape(count, width) if width else flat
