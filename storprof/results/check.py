"""Every field of a results line checked by type before it becomes a record.

The views compute with what records hold (ratios of metrics, repeats as counts, names as strings),
so a line whose `repeat` is a list or whose `metrics` is a string would fail deep inside pandas
with a traceback. Each field is checked against the annotation of its dataclass in records.py (so
a new field is checked the moment it is declared), with tighter rules where the annotation says
`Any`: metrics are numbers (or null), params are JSON scalars or lists of them.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Union

from storprof.errors import UserError
from storprof.results import records
from storprof.results.records import CONTEXT_FIELDS, SCHEMA_VERSION, ProbeRecord, Record, RunContext

Number = int | float
Scalar = str | int | float | bool | None
# Where a field's annotation is dict[str, Any], what its values may be.
VALUE_TYPES: dict[str, Any] = {"metrics": Number | None, "params": Scalar | list[Scalar | list[Scalar]]}
# Values a few fields take: the views branch on them.
CHOICES: dict[str, tuple[str, ...]] = {"status": ("ok", "failed", "skipped"),
                                      "primary_metric": ("iops", "bw", "time", "")}


def _matches(value: Any, hint: Any) -> bool:
    """Does the JSON `value` fit the annotation `hint` (as records.py writes them)?"""
    return _checker(hint)(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_SIMPLE: dict[Any, Callable[[Any], bool]] = {
    Any: lambda value: True, type(None): lambda value: value is None, bool: lambda value: isinstance(value, bool),
    int: _is_int, float: _is_number, str: lambda value: isinstance(value, str)}


@functools.cache
def _checker(hint: Any) -> Callable[[Any], bool]:
    """A predicate for one annotation, built once (records are many, annotations few)."""
    if hint in _SIMPLE:
        return _SIMPLE[hint]
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = tuple(_checker(option) for option in typing.get_args(hint))
        return lambda value: any(check(value) for check in options)
    if origin in (tuple, list):
        item = _checker(typing.get_args(hint)[0])
        return lambda value: isinstance(value, list) and all(item(v) for v in value)
    if origin is dict:
        item = _checker(typing.get_args(hint)[1])
        return lambda value: isinstance(value, dict) and all(isinstance(k, str) and item(v) for k, v in value.items())
    return lambda value: False


def _describe(hint: Any) -> str:
    text = str(hint).replace("typing.", "").replace("NoneType", "null")
    return {"<class 'str'>": "a string", "<class 'int'>": "a whole number", "<class 'float'>": "a number",
            "<class 'bool'>": "true or false"}.get(text, text)


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true or false",
            type(None): "null"}.get(type(value), "a number")


@functools.cache
def _field_rules(cls: type[Record]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, annotation, required) of each JSON field of a record class, context fields included."""
    hints = typing.get_type_hints(cls, vars(records))
    context = typing.get_type_hints(RunContext, vars(records))
    rules = []
    for f in dataclasses.fields(cls):            # type: ignore[arg-type]
        if f.name == "context":
            rules += [(name, context[name], name in ("run_id", "driver_spec", "driver", "fs"))
                      for name in CONTEXT_FIELDS]
            continue
        if cls is ProbeRecord and f.name in ("seconds", "bytes"):
            continue                  # kept in metrics: checked below
        hint = hints[f.name]
        if f.name in VALUE_TYPES and typing.get_origin(hint) is dict:
            hint = dict[str, VALUE_TYPES[f.name]]   # type: ignore[valid-type,name-defined]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        rules.append((f.name, hint, required))
    return tuple(rules)


def check_version(data: dict[str, Any], where: str) -> None:
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise UserError(f"{where}: schema_version is {_json_type(version)}, not a whole number")
    if version > SCHEMA_VERSION:
        raise UserError(f"{where}: schema_version {version} is newer than this storprof understands "
                        f"({SCHEMA_VERSION}); upgrade storprof")


def check_record(cls: type[Record], data: dict[str, Any], where: str) -> None:
    """One UserError naming the first field of `data` that a `cls` record cannot hold."""
    for name, hint, required in _field_rules(cls):   # type: ignore[arg-type]
        if name not in data:
            if required:
                raise UserError(f"{where}: a {cls.kind} line without its {name!r} field")
            continue
        value = data[name]
        if not _matches(value, hint):
            raise UserError(f"{where}: {name!r} is {_json_type(value)}, not {_describe(hint)}")
        if name in CHOICES and isinstance(value, str) and value not in CHOICES[name]:
            raise UserError(f"{where}: {name!r} is {value[:40]!r}, not one of {', '.join(CHOICES[name])}")
    if cls is ProbeRecord:
        metrics = data.get("metrics")
        if not isinstance(metrics, dict) or not _matches(metrics.get("seconds"), float):
            raise UserError(f"{where}: a probe line without a number in metrics.seconds")
        if not _matches(metrics.get("bytes"), int | None):
            raise UserError(f"{where}: metrics.bytes is {_json_type(metrics.get('bytes'))}, not a whole number")
