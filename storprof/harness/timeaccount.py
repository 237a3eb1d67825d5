"""The time account: every second of a run (`storprof sweep`, `layers`, `net`) charged to one phase.

A phase is exclusive: while a phase runs inside another (the union image built inside the fio
workload's preparation, a container started inside a probe), its seconds are the inner phase's
alone, and the outer phase is charged only for the time no inner phase was open. So phases never
count a second twice and their sum never exceeds the wall time.

Seconds go to the spec whose session is open (`spec(label)`, from before the session is set up to
after its teardown) or, between sessions, to the run itself (planning and machine checks before
the first, statistics and views after the last). What no phase claims is `other`, so each spec's
phases add up to its wall time, and the run's phases plus its specs' wall times to the run's.
The account is kept in meta.json as `time_account` (results/store.py) and shown as one line per
spec by views/timeaccount.py.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

# Phase names, as the account and meta.json keep them (views/timeaccount.py says them in words).
# A workload's own time (its preparation and units, less the phases below) is kept under the
# workload's registered name ("copyup", "layers", "fio", "net", ...).
PLAN = "plan"                        # options, machine checks, the results directory (run level)
BACKING_FS = "backing_fs"            # mkfs and mount of the spec's backing filesystem
DAEMON_START = "daemon_start"        # starting the engine's daemon(s)
IMAGE = "image"                      # importing or building images
CONTAINERS = "containers"            # starting the containers fio runs in
PRECONDITION = "precondition"        # writing data files once, calibrating metadata jobs
SETTLE = "settle"                    # waiting for the disk to go quiet before a timed run
FIO_MEASURING = "fio_measuring"      # what fio reports it measured (runtime_ms of the run)
FIO_RAMP = "fio_ramp"                # fio doing I/O it does not measure (the job's ramp_time)
FIO_STARTUP = "fio_startup"          # the rest of each timed fio run's wall time: exec, start, exit
TEARDOWN = "teardown"                # removing what the session made
STATISTICS = "statistics"            # reading the results, statistics, tables and views (run level)
OTHER = "other"                      # what no phase claims


class SpecTimes:
    """One spec's phases and its wall time, from its session's start to the end of its teardown."""

    def __init__(self, started: float):
        self.started = started
        self.ended: float | None = None
        self.phases: dict[str, float] = defaultdict(float)

    def wall(self, now: float) -> float:
        return (self.ended if self.ended is not None else now) - self.started

    def to_meta(self, now: float) -> dict:
        wall = self.wall(now)
        return {"wall_seconds": round(wall, 3), "phases": _with_other(self.phases, wall)}


class TimeAccount:
    """Seconds per phase, per spec and for the run around them; `phase(name)` charges a `with`
    block, `spec(label)` opens a spec's account. `on_spec_end(account)` is called as each spec's
    account closes (the sweep writes meta.json then)."""

    def __init__(self, started: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.started = clock() if started is None else started
        self.ended: float | None = None
        self.run: dict[str, float] = defaultdict(float)
        self.specs: dict[str, SpecTimes] = {}
        self.on_spec_end: Callable[[TimeAccount], None] | None = None
        self._open: list[str] = []           # the open phases, innermost last
        self._since = self.clock()           # since when the innermost open phase is charged
        self._spec: SpecTimes | None = None

    def _charge(self) -> None:
        """Give the seconds since the last change to the innermost open phase."""
        now = self.clock()
        if self._open:
            self._phases()[self._open[-1]] += now - self._since
        self._since = now

    def _phases(self) -> dict[str, float]:
        return self._spec.phases if self._spec is not None else self.run

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._charge()
        self._open.append(name)
        try:
            yield
        finally:
            self._charge()
            self._open.pop()

    @contextlib.contextmanager
    def spec(self, label: str) -> Iterator[SpecTimes]:
        """The spec's account for the `with` block; phases open around it are not charged meanwhile."""
        self._charge()
        outer, outer_spec = self._open, self._spec
        times = self._spec = self.specs.setdefault(label, SpecTimes(self.clock()))
        self._open = []
        try:
            yield times
        finally:
            self._charge()
            times.ended = self.clock()
            self._open, self._spec = outer, outer_spec
            if self.on_spec_end is not None:
                self.on_spec_end(self)

    def add(self, name: str, seconds: float) -> None:
        """Seconds spent before the account existed (the CLI's checks, before the run began)."""
        self._phases()[name] += max(0.0, seconds)

    def move(self, source: str, dest: str, seconds: float) -> None:
        """Reclassify seconds already charged to `source` (at most what it has) as `dest`: a fio
        run's wall time is charged to start-up, then what fio says it measured moves to measuring."""
        phases = self._phases()
        amount = min(max(0.0, seconds), phases.get(source, 0.0))
        phases[source] -= amount
        phases[dest] += amount

    def close(self) -> None:
        """The run is over: its wall time stops here."""
        self._charge()
        self.ended = self.clock()

    def finish(self, store) -> dict:
        """Close the account and keep it in `store`'s meta.json (ResultsStore.save_time_account)."""
        self.close()
        meta = self.to_meta()
        store.save_time_account(meta)
        return meta

    def wall(self) -> float:
        return (self.ended if self.ended is not None else self.clock()) - self.started

    def __getitem__(self, name: str) -> float:
        """A phase's seconds over the whole run, every spec and the run itself."""
        return self.run.get(name, 0.0) + sum(s.phases.get(name, 0.0) for s in self.specs.values())

    def to_meta(self) -> dict:
        """meta.json's `time_account`: the run's wall time and phases, and each spec's."""
        self._charge()
        now = self.ended if self.ended is not None else self.clock()
        wall = now - self.started
        specs = {label: s.to_meta(now) for label, s in self.specs.items()}
        in_specs = sum(s.wall(now) for s in self.specs.values())
        return {"wall_seconds": round(wall, 3), "run": _with_other(self.run, wall - in_specs), "specs": specs}


def _with_other(phases: dict[str, float], wall: float) -> dict[str, float]:
    """The phases with `other`, what is left of `wall`, rounded to milliseconds. `other` is never
    negative: phases that overran the wall (which exclusive phases cannot) would show as a sum
    above it."""
    out = {name: round(s, 3) for name, s in phases.items() if s > 0}
    out[OTHER] = round(max(0.0, wall - sum(phases.values())), 3)
    return out
