"""When an array indexed by id beats a search: one rule for every id lookup in the evaluators."""

from __future__ import annotations

__all__ = ["dense_table_fits"]


def dense_table_fits(lowest: int, highest: int, count: int) -> bool:
    """A table over ids ``0..highest`` pays off when ids are non-negative and it stays small: at most
    4 Mi entries, or 16 entries per id it serves (``count``). Otherwise the callers sort or search."""
    return lowest >= 0 and highest < max(1 << 22, 16 * count)
