"""Old results lines made current, one schema step at a time, as they are read.

Like pyperf's result files, every line of results.jsonl says which schema wrote it. A reader never
rewrites a file on disk: it migrates each line on load, so every view sees only today's model and a
results directory from any earlier storprof prints the same cells it printed then. A step is a pure
function of one line of one kind; kinds a step does not name pass through unchanged.

Why each version exists:
- 1: the first schema.
- 2: net records carry a RunContext like storage records (driver, filesystem, engine of the daemon
  the run used), and their repeats count from 0 as storage's do. A schema-1 net line gets the
  context its daemons had (overlay2, on a filesystem it did not record) and its repeat less one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from storprof.results.records import SCHEMA_VERSION

Line = dict[str, Any]
Step = Callable[[Line], Line]

# STEPS[v][kind] makes a line of `kind` written by schema v into one of schema v + 1.
STEPS: dict[int, dict[str, Step]] = {}
SYSTEM_ENGINE = "system"      # engines.SYSTEM, named here so that results need not import the engines


def _net_1(line: Line) -> Line:
    """A schema-1 net line: repeats from 0, and the context of its daemons (overlay2 on a
    filesystem the line did not record)."""
    engine = str(line.get("engine") or SYSTEM_ENGINE)
    fs = "unknown"
    spec = f"overlay2@{fs}" + ("" if engine == SYSTEM_ENGINE else f":{engine}")
    return {"driver_spec": spec, "driver": "overlay2", "fs": fs, **line, "engine": engine,
            "repeat": int(line.get("repeat", 1)) - 1}


STEPS.setdefault(1, {})["net"] = _net_1


def migrate(line: Line) -> Line:
    """`line` as the current schema writes it (a new dict; `line` is not changed)."""
    version = line.get("schema_version", 1)
    out = dict(line)
    while version < SCHEMA_VERSION:
        step = STEPS.get(version, {}).get(out.get("kind", ""))
        out = step(out) if step else out
        version += 1
        out["schema_version"] = version
    return out
