"""A small typed name → object registry with lazy ``"module:attr"`` targets.

The registries of the project: dataset formats (``detclip_bench.datasets.DATASET_FORMATS``),
suites (``detclip_bench.suites.SUITES``), benchmarked models (``detclip_bench.adapters.registry.MODELS``)
and the reference model's variants (``reference_model.detclipv2.variants.VARIANTS``); layers and
losses are imported, never registered. Lazy targets keep ``--help`` and ``ls`` fast: heavy modules are
imported only when their name is asked for.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from detclip_bench.errors import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def add(self, name: str, target: T | str) -> None:
        """Register ``target`` (an object, or a lazy ``"package.module:attr"`` string; ``attr`` may be dotted,
        e.g. ``Class.method``)."""
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
        return target  # type: ignore[return-value]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
