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

import pandas as pd

from storprof.harness.workload import Sink, Unit, Workload
from storprof.results.records import FioRecord, ProbeRecord, Record
from storprof.stats.intervals import ratio_interval, repeats_needed
from storprof.stats.summary import paired_ratio

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
            with session.times.phase(workload.name):
                workload.prepare(session, sink)
                prepared.append(workload)
                for unit in units:
                    outcome.ran += _run(workload, unit, session, sink, unit_done, costs)
        if precision is not None:
            _extra_rounds(prepared, session, sink, unit_done, precision, costs, outcome, more)
    finally:
        for workload in reversed(prepared):
            with session.times.phase(workload.name):
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
        with session.times.phase(workload.name):
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


def _cell_of(record: Record) -> tuple[str, str, float] | None:
    """(job, placement, value) of a storage record, for a workload that does not say its own."""
    value = record_value(record)
    if value is None:
        return None
    # a fio run's job, a probe sample's identity (its fields: it has no job name)
    job = record.identity if isinstance(record, ProbeRecord) else record.job   # type: ignore[attr-defined]
    return job, record.placement, value                                      # type: ignore[attr-defined,return-value]


def cells(workload, records: list[Record]) -> pd.DataFrame:
    """The session's records of a workload as summary's frame: group, job, placement, run_id,
    repeat, value. A workload with `cell_of(record)` says its own job, placement and value (the
    network paths: job = namespace, placement = path, "host" its baseline)."""
    cell_of = getattr(workload, "cell_of", _cell_of)
    rows = []
    for r in records:
        group = workload.group_of(r)
        cell = cell_of(r) if group is not None else None
        if cell is not None:
            job, placement, value = cell
            rows.append({"group": group, "job": job, "placement": placement, "run_id": r.context.run_id,  # type: ignore[attr-defined]
                         "repeat": r.repeat, "value": value})                                             # type: ignore[attr-defined]
    return pd.DataFrame(rows, columns=["group", "job", "placement", "run_id", "repeat", "value"])


def group_widths(workload, records: list[Record]) -> dict[str, tuple[float, float]]:
    """Per group of a workload, from the session's records: the widest half-width (log scale) of
    its cells' paired-ratio intervals against host (summary.paired_ratio, as the tables pair), and
    the log-ratios' spread in that cell."""
    frame = cells(workload, records)
    out: dict[str, tuple[float, float]] = {}
    for (group, _job), cell in frame.groupby(["group", "job"], sort=False):
        host = cell[cell["placement"] == "host"]
        for placement, g in cell.groupby("placement", sort=False):
            if placement == "host":
                continue
            ratios = paired_ratio(g, host, "value").tolist()
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


# Seconds kept back from a session's share of the budget for tearing it down.
TEARDOWN_RESERVE = 5.0


def session_precision(target: float | None, budget_seconds: float | None, run_started: float, session_start: float,
                      sessions_left: int) -> Precision | None:
    """The precision target and, with a budget, this session's share of the time left: the rest
    of the budget over the sessions still to run, less a reserve for tearing the session down."""
    if target is None:
        return None
    if budget_seconds is None:
        return Precision(target)
    share = (run_started + budget_seconds - session_start) / max(1, sessions_left)
    return Precision(target, deadline=session_start + share - TEARDOWN_RESERVE)


def short_message(label: str, outcome: Outcome, target: float | None) -> str | None:
    """'[spec] short of ±5% after 3 extra rounds: ...', the groups furthest from the target first."""
    if not outcome.short:
        return None
    worst = sorted(outcome.short.items(), key=lambda kv: -kv[1])
    listed = ", ".join(f"{name} ±{width * 100:.0f}%" for name, width in worst[:6])
    more = f" and {len(worst) - 6} more" if len(worst) > 6 else ""
    return (f"[{label}] short of ±{(target or 0) * 100:.0f}% after {outcome.extra_rounds} extra rounds: "
            f"{listed}{more}")
