"""A small typed name → object registry with lazy ``"module:attr"`` targets (or data files, read on first use).

The registries of the project: dataset formats (``detclip_bench.datasets.DATASET_FORMATS``),
suites (``detclip_bench.suites.SUITES``), benchmarked models (``detclip_bench.adapters.models.MODELS``)
and the reference model's variants (``reference_model.detclipv2.variants.VARIANTS``); layers and
losses are imported, never registered. Lazy targets keep ``--help`` and ``ls`` fast: heavy modules are
imported only when their name is asked for.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from detclip_bench.errors import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """``load_file``: how a :class:`~pathlib.Path` target becomes its object (the suites' data files)."""

    def __init__(self, kind: str, load_file: Callable[[Path], T] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T | str | Path] = {}
        self._load_file = load_file

    def add(self, name: str, target: T | str | Path) -> None:
        """Register ``target`` (an object, a lazy ``"package.module:attr"`` string, where ``attr`` may be dotted,
        e.g. ``Class.method``, or a data file ``Path`` the registry's ``load_file`` reads on first use)."""
        if isinstance(target, Path) and self._load_file is None:
            raise TypeError(f"the {self.kind} registry reads no files")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = target

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            target = self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, repr(name), sorted(self._entries)) from None
        if isinstance(target, str) and ":" in target:
            module, attr = target.split(":", 1)
            target = functools.reduce(getattr, attr.split("."), importlib.import_module(module))
            self._entries[name] = target
        elif isinstance(target, Path):
            target = self._load_file(target)
            self._entries[name] = target
        return target  # type: ignore[return-value]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
