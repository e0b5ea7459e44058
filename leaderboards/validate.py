"""Build typed dataclasses from parsed JSON, refusing unknown keys and wrong types.

Leaderboard data is typed by hand from papers and written by many tools; a typo in a key
(``"metric"`` for ``"metrics"``) must fail loudly with the file and record named, not be
silently dropped. This is a deliberately small converter for the handful of types the
leaderboard schema uses (str, int, float, Literal, ``X | None``, dict, tuple, nested dataclasses).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from detclip_bench.errors import DataError

__all__ = ["build", "to_jsonable"]

T = TypeVar("T")


def build(cls: type[T], raw: Any, path: str, record: str) -> T:
    """Make ``cls`` from the JSON object ``raw``; every problem is a DataError naming path + record."""
    if not isinstance(raw, dict):
        raise DataError(path, record, f"expected a JSON object for {cls.__name__}, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise DataError(path, record, f"unknown key(s) {unknown} in {cls.__name__}; allowed keys: {sorted(fields)}")
    missing = [
        name
        for name, f in fields.items()
        if name not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise DataError(path, record, f"missing required key(s) {missing} in {cls.__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, path, record, name) for name, value in raw.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise DataError(path, record, f"invalid {cls.__name__}: {exc}") from exc


def _coerce(tp: Any, value: Any, path: str, record: str, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, path, record, where)
            except DataError as exc:
                errors.append(exc.reason)
        raise DataError(path, record, "; ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise DataError(path, record, f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise DataError(path, record, f"{where} must be an object, got {type(value).__name__}")
        key_tp, val_tp = args
        return {
            _coerce(key_tp, k, path, record, f"{where} key"): _coerce(val_tp, v, path, record, f"{where}[{k!r}]")
            for k, v in value.items()
        }
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise DataError(path, record, f"{where} must be a list, got {type(value).__name__}")
        return tuple(_coerce(args[0], v, path, record, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path, f"{record}.{where}")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(path, record, f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(path, record, f"{where} must be an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise DataError(path, record, f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"leaderboards.validate: unsupported field type {tp!r} for {where}")  # a schema bug, not data


def to_jsonable(obj: Any) -> Any:
    """Dataclass → plain JSON value (tuples become lists), the inverse of :func:`build`."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    return obj
