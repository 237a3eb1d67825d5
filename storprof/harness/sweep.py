"""The sweep: for each driver spec, a session, then the scheduler over the workloads' units.

A spec that cannot run, or fails part-way, becomes a driver record with its reason and the sweep
goes on with the next one. Records reach results.jsonl as each unit ends. The run's ownership
record (state.py) lives from the first thing made to the last thing removed.
"""

from __future__ import annotations

import functools
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docker.errors
import requests.exceptions

from storprof.engine import drivers
from storprof.engine.drivers import DriverSpec
from storprof.errors import StorprofError, first_line
from storprof.harness.lifecycle import owned_run
from storprof.harness.plan import SweepPlan
from storprof.harness.progress import Progress, SessionTally, as_progress
from storprof.harness.scheduler import Batch, Outcome, Precision, run_units, session_precision, short_message
from storprof.harness.session import AttachedSession, EphemeralSession, Session
from storprof.harness.state import RunState
from storprof.harness.timeaccount import PLAN, TimeAccount
from storprof.harness.workload import Sink, Unit
from storprof.host import safepath
from storprof.host.facts import host_facts
from storprof.host.mounts import host_fs_type
from storprof.results import ResultsStore
from storprof.results.records import DriverRecord

FAILURES = (StorprofError, docker.errors.DockerException, requests.exceptions.RequestException)


class Sweep:
    """Runs a SweepPlan into a ResultsStore; `run()` returns one DriverRecord per driver spec."""

    def __init__(self, plan: SweepPlan, store: ResultsStore, progress: Progress | Callable[[str], None],
                 done: frozenset = frozenset(), times: TimeAccount | None = None):
        self.plan = plan
        self.store = store
        self.progress = as_progress(progress)
        self.done = done                        # resume keys of what the results directory holds
        self.times = times or TimeAccount()   # each spec's account reaches meta.json as the spec ends
        self.times.on_spec_end = lambda account: store.save_time_account(account.to_meta())
        self.workloads = plan.workloads()
        self.sink = Sink(store, self.progress.message)
        self.state: RunState | None = None
        self.started = time.monotonic()
        self._specs_left = 1

    @property
    def run_dir(self) -> Path:
        """This sweep's scratch directory in the workdir (rendered job files); removed at the end."""
        return self.plan.workdir / self.plan.run_id

    def run(self) -> list[DriverRecord]:
        self.started = time.monotonic()
        with owned_run(self.plan.workdir, self.plan.run_id, self.progress.message) as state:
            self.state = state
            if self.plan.docker_host:
                return [self._attached()]
            return self._ephemeral()

    def batch(self, spec: str) -> Batch:
        """Each workload with the units it still has to run for this spec."""
        return [(w, w.units(spec, self.done)) for w in self.workloads]

    def _ephemeral(self) -> list[DriverRecord]:
        with self.times.phase(PLAN):
            facts = host_facts(host_fs_type(self.plan.workdir))
            runnable = [s for s in self.plan.specs if not drivers.unavailable(s, facts=facts)]
            batches = {str(spec): self.batch(str(spec)) for spec in self.plan.specs}
        self.progress.add_total(sum(_count(b) for b in batches.values()))
        outcomes = []
        for index, spec in enumerate(self.plan.specs):
            batch = batches[str(spec)]
            self._specs_left = len(runnable) - sum(1 for s in runnable if self.plan.specs.index(s) < index)
            reason = drivers.unavailable(spec, facts=facts)
            if reason:
                self.progress.message(f"[{spec}] skipped: {reason}")
                self.progress.add_total(-_count(batch))
                outcomes.append(self._record(spec, "skipped", reason))
            elif self.done and not _count(batch):
                self.progress.message(f"[{spec}] already measured in {self.store.dir}; nothing left to run")
                outcomes.append(DriverRecord(run_id=self.plan.run_id, driver_spec=str(spec), driver=spec.driver,
                                             fs=spec.fs, status="ok", reason="already measured"))
            else:
                outcomes.append(self._measure(spec, batch, functools.partial(self.ephemeral_session, index, spec)))
        return outcomes

    def _attached(self) -> DriverRecord:
        start = time.monotonic()
        try:
            with self.times.phase(PLAN):
                session = self.attached_session()
        except FAILURES as e:
            self.progress.message(f"[attached] failed: {first_line(e)}")
            return self._record(DriverSpec("unknown", "unknown"), "failed", first_line(e), 0, time.monotonic() - start)
        batch = self.batch(session.label)
        self.progress.add_total(_count(batch))
        return self._measure(session.spec, batch, lambda: session)

    def _measure(self, spec: DriverSpec, batch: Batch, open_session: Callable[[], Session]) -> DriverRecord:
        """Run a spec's units in its session; any failure becomes the spec's status and reason."""
        start = time.monotonic()
        tally = SessionTally(self.progress, _count(batch))
        ran = 0

        def unit_done(unit: Unit, summary: str) -> None:
            tally.done()
            self.progress.unit_done(str(spec), unit.describe(), summary)

        try:
            with self.times.spec(str(spec)), open_session() as session:
                spec = session.spec
                outcome = run_units(batch, session, Sink(self.store, self.progress.message), unit_done,
                                    self._precision(start), more=tally.more)
                ran = outcome.ran
                self._say_short(spec, outcome)
            status, reason = "ok", ""
        except FAILURES as e:
            status, reason = "failed", first_line(e)
            self.progress.message(f"[{spec}] failed: {reason}")
        tally.close()
        return self._record(spec, status, reason, ran, time.monotonic() - start)

    def _precision(self, spec_start: float) -> Precision | None:
        """The precision target and, with a budget, this spec's share of the time left."""
        return session_precision(self.plan.precision, self.plan.budget_seconds, self.started, spec_start,
                                 self._specs_left)

    def _say_short(self, spec: DriverSpec, outcome: Outcome) -> None:
        line = short_message(str(spec), outcome, self.plan.precision)
        if line:
            self.progress.message(line)

    def _record(self, spec: DriverSpec, status: str, reason: str, runs: int = 0, seconds: float = 0.0) -> DriverRecord:
        record = DriverRecord(run_id=self.plan.run_id, driver_spec=str(spec), driver=spec.driver, fs=spec.fs,
                              status=status, reason=reason, runs=runs, seconds=round(seconds, 3))
        self.store.append(record)
        return record

    def _session_kw(self) -> dict:
        assert self.state is not None
        return dict(run_id=self.plan.run_id, run_dir=self.run_dir, state=self.state, times=self.times,
                    message=self.progress.message, user_image=self.plan.image,
                    scratch=self.plan.workdir)

    def ephemeral_session(self, index: int, spec: DriverSpec) -> EphemeralSession:
        """The session of one spec (also for tests and benchmarks, with a state record of its own)."""
        standalone = self.state is None
        if standalone:
            safepath.make_private_dir(self.plan.workdir, "work directory")
            self.state = RunState(self.plan.workdir, self.plan.run_id, sys.argv)
        session = EphemeralSession(spec, index, self.plan.workdir, self.plan.backing_size_bytes(),
                                   self.store.dir / "daemons", self.plan.storage_opts_for(spec.driver),
                                   **self._session_kw())
        if standalone:
            session.on_close(self._finish_standalone)
        return session

    def _finish_standalone(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.state is not None:
            self.state.finish()
            self.state = None

    def attached_session(self) -> AttachedSession:
        assert self.plan.docker_host is not None
        return AttachedSession(self.plan.docker_host, **self._session_kw())


def _count(batch: Batch) -> int:
    return sum(len(units) for _, units in batch)
