"""The order units run in within one session, and where extra repeats go.

Each workload hands over its units already interleaved (placements rotated within a repeat,
repeats outermost), so a unit's neighbours in time are its pairs. Every workload first runs its
minimum repeats; then, with a precision target, the scheduler spends further rounds (one more
repeat of one group, all its placements back to back, rotated) while the session's time lasts.
A round goes to the group most likely to answer one of its open cells (a placement's paired
ratio to host) per second it costs; a cell is answered when its interval excludes 1.00 under
the stricter stopping rule, or is within the target (stats/sequential.py says why). A cell that
cannot be answered in the time or the repeats left is given up and named.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from storprof.harness.workload import Sink, Unit, Workload
from storprof.results.records import FioRecord, ProbeRecord, Record
from storprof.stats import sequential as seq
from storprof.stats.intervals import ratio_interval
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


@dataclass(frozen=True)
class GivenUp:
    """A cell the scheduler stopped spending rounds on before it had an answer, and why."""

    workload: str
    group: str
    cell: str
    reason: str

    def __str__(self) -> str:
        return f"{self.workload} {self.group} {self.cell} ({self.reason})"


@dataclass
class Outcome:
    """What a session's scheduling did: units run, the groups left with a cell not yet answered,
    and the cells given up."""

    ran: int = 0
    extra_rounds: int = 0
    short: dict[str, float] = field(default_factory=dict)    # 'workload group' -> widest half-width
    given_up: list[GivenUp] = field(default_factory=list)
    cut: dict[str, int] = field(default_factory=dict)        # workload -> base units the budget left out


# Under a budget, the repeats every unit runs even when the session's share is spent: two pairs
# give a cell an interval; the repeats past them are left out once the deadline has passed, so
# the budget bounds the base rounds too, not only the extra ones.
BUDGET_FLOOR_REPEATS = 2


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
                    if _past_deadline(precision) and unit.repeat >= BUDGET_FLOOR_REPEATS:
                        outcome.cut[workload.name] = outcome.cut.get(workload.name, 0) + 1
                        more(-1)
                        continue
                    outcome.ran += _run(workload, unit, session, sink, unit_done, costs)
        if precision is not None:
            _extra_rounds(prepared, session, sink, unit_done, precision, costs, outcome, more)
    finally:
        for workload in reversed(prepared):
            with session.times.phase(workload.name):
                workload.cleanup(session)
    return outcome


def _past_deadline(precision: Precision | None) -> bool:
    return precision is not None and precision.deadline is not None and time.monotonic() > precision.deadline


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
    rule: seq.Rule | None = None
    gave_up: dict[tuple[str, str, str], str] = {}
    while True:
        states = [c for w in prepared if hasattr(w, "group_of") for c in cell_states(w, sink.records)]
        if rule is None:      # one look per repeat from the fewest pairs a cell has now
            first = min((c.n for c in states), default=2)
            rule = seq.Rule(precision.target, precision.max_repeats, min_repeats=max(2, first))
        choice = _next_round(states, rule, precision, costs, outcome, gave_up)
        if choice is None:
            return
        workload, group = choice
        repeat = max(costs.repeats.get((workload.name, group), {-1})) + 1
        units = workload.extra_round(session.label, group, repeat)        # type: ignore[attr-defined]
        more(len(units))
        with session.times.phase(workload.name):
            for unit in units:
                outcome.ran += _run(workload, unit, session, sink, unit_done, costs)
        outcome.extra_rounds += 1


def _next_round(states: list[CellState], rule: seq.Rule, precision: Precision, costs: RoundCosts,
                outcome: Outcome, gave_up: dict[tuple[str, str, str], str]) -> tuple[Workload, str] | None:
    """The group one more round goes to, or None; gives up the cells out of reach (kept in
    `gave_up`) and says in `outcome` what is still open."""
    if not states:
        outcome.short, outcome.given_up = {}, []
        return None
    groups = list(dict.fromkeys((c.workload, c.group) for c in states))
    member = np.array([[(c.workload, c.group) == g for g in groups] for c in states], dtype=float)
    n, mean, sd = (np.array([getattr(c, k) for c in states], dtype=float) for k in ("n", "mean", "sd"))
    n = n.astype(int)
    cost = np.array([costs.per_round(w.name, g) for w, g in groups])
    done = np.array([costs.rounds(w.name, g) for w, g in groups])
    left = math.inf if precision.deadline is None else precision.deadline - time.monotonic()
    before = np.array([c.name in gave_up for c in states])
    choice, given_up, needed = seq.choose(rule, n, mean, sd, member, cost, done, left, before)
    cell_cost = member @ cost
    for i in np.nonzero(given_up & ~before)[0]:
        gave_up[states[i].name] = (f"needs more than {rule.max_repeats} repeats" if n[i] + needed[i] > rule.max_repeats
                                   else f"needs {needed[i]} more rounds, {needed[i] * cell_cost[i]:.0f} s, "
                                        f"{max(left, 0.0):.0f} s left")
    _report(states, seq.answers(seq.as_users_see(rule), n, mean, sd) == seq.UNANSWERED, gave_up, outcome)
    return groups[int(choice)] if choice >= 0 else None


def _report(states: list[CellState], unanswered: np.ndarray, gave_up: dict[tuple[str, str, str], str],
            outcome: Outcome) -> None:
    """What users will read as not yet known (the plain interval, the rule's caution aside): the
    groups with such a cell, at their widest half-width, and those of its cells given up."""
    open_names = {c.name for c, o in zip(states, unanswered) if o}
    widest: dict[str, float] = {}
    for c in states:
        key = f"{c.workload.name} {c.group}"
        widest[key] = max(widest.get(key, 0.0), math.expm1(c.half))
    outcome.short = {key: widest[key] for key in dict.fromkeys(f"{w} {g}" for w, g, _ in
                                                               (c.name for c in states if c.name in open_names))}
    outcome.given_up = [GivenUp(*name, reason) for name, reason in gave_up.items() if name in open_names]


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


@dataclass(frozen=True)
class CellState:
    """One cell of a workload's group in this session: its paired log-ratios to host as n, mean
    and sd, and the half-width (log scale) of its 95% interval."""

    workload: Workload
    group: str
    cell: str
    n: int
    mean: float
    sd: float
    half: float

    @property
    def name(self) -> tuple[str, str, str]:
        return (self.workload.name, self.group, self.cell)


def cell_states(workload, records: list[Record]) -> list[CellState]:
    """Every cell of at least two pairs against host, from the session's records, paired as the
    tables pair (summary.paired_ratio)."""
    frame = cells(workload, records)
    out = []
    for (group, job), cell in frame.groupby(["group", "job"], sort=False):
        host = cell[cell["placement"] == "host"]
        for placement, g in cell.groupby("placement", sort=False):
            if placement == "host":
                continue
            ratios = paired_ratio(g, host, "value").tolist()
            interval = ratio_interval(ratios)
            if interval is None or interval.n < 2:
                continue
            n, mean, sd = seq.log_stats(ratios)
            name = " ".join([*_job_words(job, workload.name, group), placement])
            out.append(CellState(workload, group, name, n, mean, sd, interval.half_width))
    return out


def _job_words(job, workload: str, group: str) -> list[str]:
    """What names a cell's job beyond its workload and group (a probe's identity is a tuple)."""
    parts = job if isinstance(job, tuple) else (job,)
    return [str(x) for x in parts if x is not None and str(x) not in (workload, group)]


def group_widths(workload, records: list[Record]) -> dict[str, tuple[float, float]]:
    """Per group of a workload, from the session's records: the widest half-width (log scale) of
    its cells' paired-ratio intervals against host (summary.paired_ratio, as the tables pair), and
    the log-ratios' spread in that cell."""
    out: dict[str, tuple[float, float]] = {}
    for c in cell_states(workload, records):
        if c.half > out.get(c.group, (-1.0, 0.0))[0]:
            out[c.group] = (c.half, c.sd)
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
    """'[spec] short of ±5% after 3 extra rounds: ...', the groups furthest from the target first,
    then the cells given up, each with its reason."""
    if not outcome.short and not outcome.given_up and not outcome.cut:
        return None
    worst = sorted(outcome.short.items(), key=lambda kv: -kv[1])
    listed = ", ".join(f"{name} ±{width * 100:.0f}%" for name, width in worst[:6])
    more = f" and {len(worst) - 6} more" if len(worst) > 6 else ""
    line = (f"[{label}] short of ±{(target or 0) * 100:.0f}% after {outcome.extra_rounds} extra rounds: "
            f"{listed}{more}")
    if outcome.cut:
        cut = ", ".join(f"{name} {count}" for name, count in outcome.cut.items())
        line += (f". The budget was spent before the base rounds ended: runs past repeat "
                 f"{BUDGET_FLOOR_REPEATS} left out ({cut})")
    if outcome.given_up:
        named = "; ".join(str(g) for g in outcome.given_up[:6])
        rest = f"; and {len(outcome.given_up) - 6} more" if len(outcome.given_up) > 6 else ""
        line += f". Given up: {named}{rest}"
    return line
