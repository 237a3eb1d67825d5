"""The order units run in, within one session.

Each workload hands over its units already interleaved (placements rotated within a repeat,
repeats outermost), so a unit's neighbours in time are its pairs; the scheduler runs the
workloads one after another, preparing each once and cleaning it up even after an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .workload import Sink, Unit, Workload

if TYPE_CHECKING:
    from .session import Session

Batch = list[tuple[Workload, list[Unit]]]


def run_units(batch: Batch, session: Session, sink: Sink, unit_done: Callable[[Unit, str], None]) -> int:
    """Run every unit of every workload in the session; returns how many units ran."""
    ran = 0
    for workload, units in batch:
        if not units:
            continue
        with session.times.phase(f"workload:{workload.name}"):
            try:
                workload.prepare(session, sink)
                for unit in units:
                    unit_done(unit, workload.run(unit, session, sink))
                    ran += 1
            finally:
                workload.cleanup(session)
    return ran
