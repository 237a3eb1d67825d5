"""The order units run in within one session, and where extra repeats go.

Each workload hands over its units already interleaved (placements rotated within a repeat,
repeats outermost), so a unit's neighbours in time are its pairs. Every workload first runs its
minimum repeats; then, with a precision target, the scheduler spends further rounds (one more
repeat of one group, all its placements back to back, rotated) on the group whose widest ratio
interval is furthest from the target, while the session's time lasts. A group that would need
more rounds than allowed to reach the target is left alone and reported as out of reach.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storprof.harness.workload import Sink, Unit, Workload
from storprof.results.records import FioRecord, ProbeRecord, Record
from storprof.stats.intervals import ratio_interval, repeats_needed

if TYPE_CHECKING:
    from storprof.harness.session import Session

Batch = list[tuple[Workload, list[Unit]]]


@dataclass(frozen=True)
class Precision:
    """How precise ratios should get, and until when a session may spend rounds on them."""

    target: float = 0.05           # relative half-width of a ratio's 95% interval
    deadline: float | None = None  # time.monotonic() after which no extra round starts
    max_repeats: int = 30          # no group gets more rounds than this


@dataclass
class Outcome:
    """What a session's scheduling did: units run, and the groups left short of the target."""

    ran: int = 0
    extra_rounds: int = 0
    short: dict[str, float] = field(default_factory=dict)    # 'workload group' -> widest half-width


def run_units(batch: Batch, session: Session, sink: Sink, unit_done: Callable[[Unit, str], None],
              precision: Precision | None = None, more: Callable[[int], None] = lambda units: None) -> Outcome:
    """Run every workload's units in the session, then extra rounds towards `precision`; every
    workload that was prepared is cleaned up, newest first, also after an error."""
    outcome, prepared = Outcome(), []
    costs = RoundCosts()
    try:
        for workload, units in batch:
            if not units:
                continue
            with session.times.phase(f"workload:{workload.name}"):
                workload.prepare(session, sink)
                prepared.append(workload)
                for unit in units:
                    outcome.ran += _run(workload, unit, session, sink, unit_done, costs)
        if precision is not None:
            _extra_rounds(prepared, session, sink, unit_done, precision, costs, outcome, more)
    finally:
        for workload in reversed(prepared):
            with session.times.phase(f"workload:{workload.name}"):
                workload.cleanup(session)
    return outcome


class RoundCosts:
    """Seconds each (workload, group) has taken per repeat so far: what one more round would cost."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = {}
        self.repeats: dict[tuple[str, str], set[int]] = {}

    def add(self, workload: str, unit: Unit, seconds: float) -> None:
        key = (workload, unit.group)
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        self.repeats.setdefault(key, set()).add(unit.repeat)

    def per_round(self, workload: str, group: str) -> float:
        key = (workload, group)
        return self.seconds.get(key, 0.0) / max(1, len(self.repeats.get(key, ())))

    def rounds(self, workload: str, group: str) -> int:
        return len(self.repeats.get((workload, group), ()))


def _run(workload: Workload, unit: Unit, session: Session, sink: Sink, unit_done, costs: RoundCosts) -> int:
    start = time.monotonic()
    unit_done(unit, workload.run(unit, session, sink))
    costs.add(workload.name, unit, time.monotonic() - start)
    return 1


def _extra_rounds(prepared: list[Workload], session: Session, sink: Sink, unit_done, precision: Precision,
                  costs: RoundCosts, outcome: Outcome, more: Callable[[int], None]) -> None:
    target = math.log1p(precision.target)
    while True:
        widths = {(w, g): width for w in prepared if hasattr(w, "group_of")
                  for g, width in group_widths(w, sink.records).items()}
        reachable = {key: width for key, (width, sd) in widths.items()
                     if width > target and costs.rounds(key[0].name, key[1]) < precision.max_repeats
                     and repeats_needed(sd, precision.target) <= precision.max_repeats}
        outcome.short = {f"{w.name} {g}": math.expm1(width) for (w, g), (width, _) in widths.items() if width > target}
        if not reachable:
            return
        workload, group = max(reachable, key=lambda key: reachable[key])
        cost = costs.per_round(workload.name, group)
        if precision.deadline is not None and time.monotonic() + cost > precision.deadline:
            return
        repeat = max(costs.repeats.get((workload.name, group), {-1})) + 1
        units = workload.extra_round(session.label, group, repeat)        # type: ignore[attr-defined]
        more(len(units))
        with session.times.phase(f"workload:{workload.name}"):
            for unit in units:
                outcome.ran += _run(workload, unit, session, sink, unit_done, costs)
        outcome.extra_rounds += 1


def record_value(record: Record) -> float | None:
    """The number a record is judged by: a fio run's primary metric, a probe sample's seconds."""
    if isinstance(record, FioRecord) and record.status == "ok":
        key = "total_bw_bytes" if record.primary_metric == "bw" else "total_iops"
        value = record.metrics.get(key)
        return float(value) if value else None
    if isinstance(record, ProbeRecord):
        return record.seconds if record.seconds > 0 else None
    return None


def group_widths(workload, records: list[Record]) -> dict[str, tuple[float, float]]:
    """Per group of a workload, from the session's records: the widest half-width (log scale) of
    its cells' paired-ratio intervals against host, and the log-ratios' spread in that cell."""
    # A cell's row: a fio run's job, a probe sample's identity (its fields; it has no job name).
    host: dict[tuple[str, str | tuple, int], float] = {}
    cells: dict[tuple[str, str | tuple, str], dict[int, float]] = {}
    for r in records:
        group, value = workload.group_of(r), record_value(r)
        if group is None or value is None:
            continue
        job: str | tuple = r.identity if isinstance(r, ProbeRecord) else r.job   # type: ignore[attr-defined]
        placement, repeat = r.placement, r.repeat                      # type: ignore[attr-defined]
        if placement == "host":
            host[(group, job, repeat)] = value
        else:
            cells.setdefault((group, job, placement), {})[repeat] = value
    out: dict[str, tuple[float, float]] = {}
    for (group, job, _placement), values in cells.items():
        ratios = [v / host[(group, job, rep)] for rep, v in values.items() if host.get((group, job, rep))]
        interval = ratio_interval(ratios)
        if interval is None or interval.n < 2:
            continue
        half = (math.log(interval.high) - math.log(interval.low)) / 2
        logs = [math.log(x) for x in ratios]
        mean = sum(logs) / len(logs)
        sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
        if half > out.get(group, (-1.0, 0.0))[0]:
            out[group] = (half, sd)
    return out
