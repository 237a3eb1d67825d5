"""The text a probe row is shown by, made from its fields (records.ProbeRecord.IDENTITY).

Tables, reports and exports print the same words storprof always printed for these rows (the
`job` column), but nothing reads them back: views and statistics select rows by their fields.
results/migrate.py is the one place an old label is parsed, once, into those fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def _whole(value: Any) -> int | None:
    """A field as it reaches a view: an int, a float of a DataFrame column, or missing (None/NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _bytes_text(n: int | None) -> str:
    return f"{n // 1024} KiB" if n is not None and n >= 1024 and n % 1024 == 0 else f"{n} B"


def _copyup(operation: str, f: dict[str, int | None]) -> str:
    return f"copyup-{f['size_mib']}m {operation}"


def _deep_stack(operation: str, f: dict[str, int | None]) -> str:
    return f"stack K={f['depth']} {operation}" + (f" {f['size_mib']}m" if operation == "first read" else "")


def _lookup(operation: str, f: dict[str, int | None]) -> str:
    return f"lookup {f['files']} files {operation}"


def _union_ops(operation: str, f: dict[str, int | None]) -> str:
    if operation == "append":
        return f"append to {f['files']} files of {_bytes_text(f['file_bytes'])}"
    if operation == "rename":
        return f"rename a dir of {f['files']} files, {f['size_mib']} MiB"
    if operation == "chown":
        return f"chown a {f['size_mib']} MiB file"
    return operation


def _page_cache(operation: str, f: dict[str, int | None]) -> str:
    return {"first reader": f"page cache: 1st of {f['containers']} readers of {f['size_mib']} MiB",
            "later reader": f"page cache: each later reader of {f['size_mib']} MiB",
            "all readers": f"page cache: {f['containers']} readers of {f['size_mib']} MiB"}.get(operation, operation)


def _build(operation: str, f: dict[str, int | None]) -> str:
    return f"build of {f['files']} files: {operation}"


def _postgres(operation: str, f: dict[str, int | None]) -> str:
    return f"postgres scale {f['scale']}: {operation}"


_LABELS: dict[str, Callable[[str, dict[str, int | None]], str]] = {
    "build": _build,
    "postgres": _postgres,
    "copyup": _copyup,
    "deep-stack": _deep_stack,
    "lookup": _lookup,
    "union-ops": _union_ops,
    "page-cache": _page_cache,
    "snapbench": lambda operation, f: f"snapbench {operation}",
    "daemon-start": lambda operation, f: f"daemon start {f['images']} images",
    "max-depth": lambda operation, f: f"max depth {operation}",
}


def probe_label(workload: str, operation: str, *, size_mib: Any = None, depth: Any = None, files: Any = None,
                file_bytes: Any = None, containers: Any = None, images: Any = None,
                scale: Any = None) -> str:
    """The row's display text, e.g. ('copyup', 'first write', size_mib=64) -> 'copyup-64m first
    write'. A workload this module does not know shows its operation as it is."""
    make = _LABELS.get(workload)
    if make is None:
        return operation
    fields = {"size_mib": _whole(size_mib), "depth": _whole(depth), "files": _whole(files),
              "file_bytes": _whole(file_bytes), "containers": _whole(containers), "images": _whole(images),
              "scale": _whole(scale)}
    return make(operation, fields)


def record_label(record: Any) -> str:
    """probe_label of anything with ProbeRecord's identity fields (a record, a row's namedtuple)."""
    return probe_label(record.workload, record.operation, size_mib=record.size_mib, depth=record.depth,
                       files=record.files, file_bytes=record.file_bytes, containers=record.containers,
                       images=record.images, scale=getattr(record, "scale", None))
