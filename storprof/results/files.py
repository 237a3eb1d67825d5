"""Reading results.jsonl and meta.json as input someone else may have written.

`storprof table`, `report` and `compare` read directories that another user, another machine or a
killed run may have left. So the files are opened without following a symlink, must be regular
files (a FIFO would hang the read, a device never end), and are capped in size; results.jsonl is
read a bounded line at a time, so one huge line costs at most MAX_LINE_BYTES. The JSON is parsed
strictly: no NaN or Infinity, no number beyond MAX_NUMBER (1e308 would overflow a sum to
infinity), no nesting deeper than MAX_DEPTH, no object with more than MAX_KEYS keys. Whatever is
wrong is one UserError naming the file and line.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storprof.errors import UserError
from storprof.host import safepath

MAX_RESULTS_BYTES = 128 << 20      # results.jsonl: a thorough sweep writes a few MiB
MAX_LINE_BYTES = 1 << 20           # one line of results.jsonl: storprof's longest are a few KiB
MAX_META_BYTES = 1 << 20           # meta.json
MAX_DEPTH = 16                     # nesting of arrays and objects in one line (storprof writes 3)
MAX_KEYS = 1000                    # keys of one object (a fio line's metrics have about 20)
MAX_VALUES = 20000                 # values in one line, all levels together
MAX_NUMBER = 1e18                  # no measurement comes near (1 EB, 30 years in ns); 1e308 would overflow sums


class _Refused(ValueError):
    """A JSON value storprof does not read (raised from the json module's hooks)."""


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number storprof reads")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise _Refused(f"the number {text[:30]} is out of range (storprof reads up to {MAX_NUMBER:g})")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(int(text)) > MAX_NUMBER:
        raise _Refused(f"the number {text[:30]} is out of range (storprof reads up to {MAX_NUMBER:g})")
    return int(text)


def parse_json(text: str, where: str) -> Any:
    """`text` as JSON, strictly (see above); json.JSONDecodeError for text that is not JSON at all,
    UserError for JSON storprof refuses."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except RecursionError:
        raise UserError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except _Refused as e:
        raise UserError(f"{where}: {e}") from None
    except json.JSONDecodeError:
        raise
    except ValueError as e:                  # e.g. Python's own limit on the digits of a whole number
        raise UserError(f"{where}: {str(e).splitlines()[0]}") from None
    check_shape(value, where)
    return value


def check_shape(value: Any, where: str) -> None:
    """No deeper than MAX_DEPTH, no object over MAX_KEYS keys, no more than MAX_VALUES values."""
    stack, count = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise UserError(f"{where}: more than {MAX_VALUES} values in one line")
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise UserError(f"{where}: nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict) and len(item) > MAX_KEYS:
                raise UserError(f"{where}: an object with {len(item)} keys (storprof reads at most {MAX_KEYS})")
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))


def _open(path: Path, max_bytes: int, what: str) -> int:
    try:
        return safepath.open_regular(path, max_bytes)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise UserError(f"cannot read {what}: {safepath.open_error(path, e)}") from None


def read_meta(path: Path) -> dict[str, Any]:
    """meta.json: one JSON object (FileNotFoundError when there is none)."""
    fd = _open(path, MAX_META_BYTES, "the results' meta.json")
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_META_BYTES + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 (byte {e.start})") from None
    try:
        meta = parse_json(text, str(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: not a JSON object")
    return meta


def read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) of each non-blank line of results.jsonl. A last line cut short
    (no newline, not JSON: a run killed mid-write) is skipped with a warning; anything else that
    is wrong refuses."""
    fd = _open(path, MAX_RESULTS_BYTES, "the results")
    with os.fdopen(fd, "rb") as f:
        number = 0
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            where = f"{path}:{number}"
            if len(raw) > MAX_LINE_BYTES:
                raise UserError(f"{where}: a line longer than {MAX_LINE_BYTES} bytes")
            data = _line(raw, where, cut=not raw.endswith(b"\n"))
            if data is not None:
                yield number, data


def _line(raw: bytes, where: str, cut: bool) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if cut:                  # a write cut inside a multi-byte character
            warnings.warn(f"{where}: skipped a truncated last line", stacklevel=3)
            return None
        raise UserError(f"{where}: not UTF-8 (byte {e.start})") from None
    if not text.strip():
        return None
    try:
        data = parse_json(text, where)
    except json.JSONDecodeError:
        if cut:
            warnings.warn(f"{where}: skipped a truncated last line", stacklevel=3)
            return None
        raise UserError(f"{where}: not a JSON line") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: not a JSON object")
    return data
