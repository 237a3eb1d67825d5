"""Old results lines made current, one schema step at a time, as they are read.

Like pyperf's result files, every line of results.jsonl says which schema wrote it. A reader never
rewrites a file on disk: it migrates each line on load, so every view sees only today's model and a
results directory from any earlier storprof prints the same cells it printed then. A step is a pure
function of one line of one kind; kinds a step does not name pass through unchanged.

Why each version exists:
- 1: the first schema.
- 2: a probe row is named by fields (operation, size_mib, depth, files, ...), not by its display
  label in `job`; probe_from_schema_1 is the one place such a label is read back.
- 2: net records carry a RunContext like storage records (driver, filesystem, engine of the daemon
  the run used), and their repeats count from 0 as storage's do. A schema-1 net line gets the
  context its daemons had (overlay2, on a filesystem it did not record) and its repeat less one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from storprof.results.records import SCHEMA_VERSION

Line = dict[str, Any]
Step = Callable[[Line], Line]

# Schema 1's probe labels, per workload: (pattern, operation or None to take the pattern's
# `operation` group, fields the pattern's other groups fill). Each is what that workload's
# job_names() wrote while results were schema 1.
_PROBE_LABELS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "copyup": ((r"copyup-(?P<size_mib>\d+)m (?P<operation>first write|first write\+fsync|second write"
                r"|second write\+fsync)", None),),
    "deep-stack": ((r"stack K=(?P<depth>\d+) (?P<operation>first stat|open)", None),
                   (r"stack K=(?P<depth>\d+) first read (?P<size_mib>\d+)m", "first read")),
    "lookup": ((r"lookup (?P<files>\d+) files (?P<operation>cold|warm)", None),),
    "union-ops": ((r"append to (?P<files>\d+) files of (?P<file_bytes>\d+ (?:B|KiB))", "append"),
                  (r"rename a dir of (?P<files>\d+) files, (?P<size_mib>\d+) MiB", "rename"),
                  (r"chown a (?P<size_mib>\d+) MiB file", "chown")),
    "page-cache": ((r"page cache: 1st of (?P<containers>\d+) readers of (?P<size_mib>\d+) MiB", "first reader"),
                   (r"page cache: each later reader of (?P<size_mib>\d+) MiB", "later reader"),
                   (r"page cache: (?P<containers>\d+) readers of (?P<size_mib>\d+) MiB", "all readers")),
    "snapbench": ((r"snapbench (?P<operation>prepare|write|commit)", None),),
    "daemon-start": ((r"daemon start (?P<images>\d+) images", "start"),),
    "max-depth": ((r"max depth (?P<operation>probe)", None),),
}
# Schema-1 params that schema 2 holds as fields (or as the operation): (param, field or "").
_PROBE_PARAMS: dict[str, tuple[tuple[str, str], ...]] = {
    "copyup": (("size_mib", "size_mib"),),
    "deep-stack": (("depth", "depth"), ("target_mib", "size_mib")),
    "lookup": (("files", "files"), ("cold", "")),
    "union-ops": (("op", ""), ("small_files", ""), ("small_bytes", ""), ("tree_files", ""), ("tree_mib", ""),
                  ("chown_mib", "")),
    "page-cache": (("containers", "containers"), ("file_mib", "size_mib"), ("reader", "")),
    "daemon-start": (("images", "images"),),
}


def _whole(text: str) -> int:
    """'512', '512 B' or '4 KiB' as a whole number of units (bytes for the last two)."""
    number, _, unit = text.partition(" ")
    return int(number) * (1024 if unit == "KiB" else 1)


def probe_from_schema_1(line: Line) -> Line:
    """A schema-1 probe line's `job` label read into schema 2's operation and parameter fields.

    A label no pattern knows (a workload of a later or an unreleased storprof) becomes the
    operation itself, so it still prints as it did. Parameters the label does not show (a page
    cache row's readers, a deep stack's target size) come from the line's params."""
    if not isinstance(line.get("job"), str):
        return dict(line)                # no label to read: the field check names what is missing
    out = dict(line)
    label = out.pop("job")
    workload = str(out.get("workload", ""))
    given = out.get("params")
    params = dict(given) if isinstance(given, dict) else {}
    found: dict[str, Any] = {"operation": label}
    for pattern, operation in _PROBE_LABELS.get(workload, ()):
        match = re.fullmatch(pattern, label)
        if match:
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            found = {k: v if k == "operation" else _whole(v) for k, v in groups.items()}
            found.setdefault("operation", operation)
            for param, name in _PROBE_PARAMS.get(workload, ()):
                value = params.pop(param, None)
                if name and name not in found and value is not None:
                    found[name] = value
            break
    out.update(found)
    if isinstance(given, dict):          # anything else stays, for the field check to name
        out["params"] = params
    return out


# STEPS[v][kind] makes a line of `kind` written by schema v into one of schema v + 1.
STEPS: dict[int, dict[str, Step]] = {}
STEPS.setdefault(1, {})["probe"] = probe_from_schema_1
SYSTEM_ENGINE = "system"      # engines.SYSTEM, named here so that results need not import the engines


def _net_1(line: Line) -> Line:
    """A schema-1 net line: repeats from 0, and the context of its daemons (overlay2 on a
    filesystem the line did not record)."""
    engine = str(line.get("engine") or SYSTEM_ENGINE)
    fs = "unknown"
    spec = f"overlay2@{fs}" + ("" if engine == SYSTEM_ENGINE else f":{engine}")
    repeat = line.get("repeat")
    # a repeat that is not a whole number stays as it is, for the field check to name
    counted = repeat - 1 if isinstance(repeat, int) and not isinstance(repeat, bool) else repeat
    return {"driver_spec": spec, "driver": "overlay2", "fs": fs, **line, "engine": engine, "repeat": counted}


STEPS.setdefault(1, {})["net"] = _net_1


def migrate(line: Line) -> Line:
    """`line` as the current schema writes it (a new dict; `line` is not changed)."""
    version = line.get("schema_version", 1)
    out = dict(line)
    kind = out.get("kind")
    while version < SCHEMA_VERSION:
        step = STEPS.get(version, {}).get(kind) if isinstance(kind, str) else None
        out = step(out) if step else out
        version += 1
        out["schema_version"] = version
    return out
