"""Old results lines made current, one schema step at a time, as they are read.

Like pyperf's result files, every line of results.jsonl says which schema wrote it. A reader never
rewrites a file on disk: it migrates each line on load, so every view sees only today's model and a
results directory from any earlier storprof prints the same cells it printed then. A step is a pure
function of one line of one kind; kinds a step does not name pass through unchanged.

Why each version exists:
- 1: the first schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from storprof.results.records import SCHEMA_VERSION

Line = dict[str, Any]
Step = Callable[[Line], Line]

# STEPS[v][kind] makes a line of `kind` written by schema v into one of schema v + 1.
STEPS: dict[int, dict[str, Step]] = {}


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
