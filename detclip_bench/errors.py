"""Errors that name the file and the record, and counted skips for known-bad real data."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["DataError", "SkipLog", "UnknownNameError"]

log = logging.getLogger("detclip_bench")


class DataError(ValueError):
    """Bad input: always says which file and which record, so a user can go and look."""

    def __init__(self, path: str, record: object, message: str) -> None:
        self.path = str(path)
        self.record = record
        self.reason = message
        super().__init__(f"{_where(self.path, record)}: {message}")

    def __reduce__(self):
        # rebuilt from its three parts, so one raised in a DataLoader worker crosses the process boundary intact
        return (type(self), (self.path, self.record, self.reason))


class UnknownNameError(KeyError):
    """A name no registry or table knows (a suite, model, recipe, split, ...); the message lists the known ones.

    A ``KeyError`` for the callers that catch one; its own type lets the CLI answer a usage error (exit 2)
    without reading the message, and ``str()`` is the message itself, not KeyError's quoted repr.
    """

    def __init__(self, kind: str, name: object, known: object) -> None:
        names = ", ".join(str(k) for k in known) if not isinstance(known, str) else known
        self.kind, self.name = kind, name
        super().__init__(f"unknown {kind} {name}; known: {names or '(none)'}")

    def __str__(self) -> str:
        return str(self.args[0])


def _where(path: str, record: object) -> str:
    """The file and record a message is about, in words: ``a.json: record 7``, ``a.json`` when no record is
    meant (``-``), ``--images photos/`` for a command-line option and its value."""
    if record is None or record in ("", "-"):
        return path
    if isinstance(record, str) and record.startswith("--"):
        return f"{record} {path}"
    if path.startswith("--"):
        return f"{path} {record!r}"
    return f"{path}: record {record}"


@dataclass
class SkipLog:
    """Counts records skipped on purpose (e.g. O365's three images missing on disk).

    Skips are logged once each (up to ``max_logged``) and summarised by :meth:`report`,
    so nothing is dropped silently.
    """

    name: str
    max_logged: int = 20
    counts: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, path: str, record: object, reason: str) -> None:
        self.counts[reason] += 1
        if len(self.examples) < self.max_logged:
            msg = f"{path}: record {record}: skipped: {reason}"
            self.examples.append(msg)
            log.warning("%s: %s", self.name, msg)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self) -> str:
        if not self.total:
            return f"{self.name}: no records skipped"
        parts = ", ".join(f"{n} × {reason}" for reason, n in self.counts.most_common())
        return f"{self.name}: skipped {self.total} records ({parts})"
