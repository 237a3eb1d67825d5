"""`storprof net`: run the plan's rounds over every network path, one record per client run.

The storage sweep's machinery, for the network half: the run's lifecycle (harness/lifecycle.py),
one NetSession per engine (a harness Session), the one scheduler over the NetPaths workload's
units (budget, precision target, extra rounds), records appended as each run ends, progress, and
resume keys. Client output is kept under raw/net/.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from storprof.engine.engines import Engine, all_engines
from storprof.engine.engines import find as find_engine
from storprof.errors import StorprofError, first_line
from storprof.harness.lifecycle import owned_run
from storprof.harness.progress import Progress, SessionTally, as_progress
from storprof.harness.scheduler import run_units, session_precision, short_message
from storprof.harness.state import RunState
from storprof.harness.timeaccount import PLAN, TimeAccount
from storprof.harness.workload import Sink, Unit
from storprof.host.mounts import host_fs_type
from storprof.host.proc import run
from storprof.network import tools as nettools
from storprof.network.plan import NetPlan
from storprof.network.session import NetSession, net_context
from storprof.network.workload import NEEDS, WRK_SCRIPT, Key, NetPaths, done_keys, missing_tools
from storprof.results import ResultsStore
from storprof.results.records import NetRecord
from storprof.storage import pgbench

# Always needed: namespaces, the sandbox, reading socket tables, the daemons.
BASE_TOOLS = ("ip", "iptables", "bwrap", "nsenter", "ss", "dockerd")
__all__ = ["BASE_TOOLS", "NEEDS", "NetRun", "done_keys", "missing_tools", "tool_versions"]


def tool_versions() -> dict[str, str]:
    """One line of each tool's own version output."""
    versions = {}
    tools = {"iperf3": ["iperf3", "--version"], "sockperf": ["sockperf", "--version"],
             "wrk": ["wrk", "-v"], "nginx": ["nginx", "-v"]}
    try:        # PostgreSQL's pgbench is not on PATH (Debian's /usr/bin/pgbench is a wrapper script)
        tools["pgbench"] = [f"{pgbench.find_server().bin}/pgbench", "--version"]
    except StorprofError:
        pass
    for tool, argv in tools.items():
        if os.sep not in argv[0] and shutil.which(tool) is None:
            continue
        try:
            out = run(argv, timeout=30, check=False)
        except StorprofError:
            continue
        lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
        versions[tool] = next((ln for ln in lines if any(ch.isdigit() for ch in ln)), "")[:120]
    return versions


class NetRun:
    """Runs a NetPlan into a ResultsStore; `run()` returns the NetRecords it wrote."""

    def __init__(self, plan: NetPlan, store: ResultsStore, progress: Progress | Callable[[str], None],
                 workdir: Path, done: frozenset[Key] = frozenset(), times: TimeAccount | None = None):
        self.plan = plan
        self.store = store
        self.progress = as_progress(progress)
        self.workdir = workdir
        self.done = done
        self.versions = tool_versions()
        self.run_dir = workdir / plan.run_id
        self.times = times or TimeAccount()   # each engine's account reaches meta.json as it ends
        self.times.on_spec_end = lambda account: store.save_time_account(account.to_meta())
        self.records: list[NetRecord] = []
        self.started = time.monotonic()

    def workload(self, engine: str) -> NetPaths:
        return NetPaths(self.plan, engine, self.run_dir, self.versions)

    def units(self, engine: str) -> list[Unit]:
        """The units still to run for an engine, in the plan's order."""
        return self.workload(engine).units(engine, self.done)

    def run(self) -> list[NetRecord]:
        self.started = time.monotonic()
        with owned_run(self.workdir, self.plan.run_id, self.progress.message) as state:
            with self.times.phase(PLAN):
                self.run_dir.mkdir(mode=0o700)
                (self.run_dir / WRK_SCRIPT).write_text(nettools.WRK_REPORT_LUA)
                engines = all_engines()
                todo = {name: self.units(name) for name in self.plan.engines}
            self.progress.add_total(sum(len(u) for u in todo.values()))
            for index, name in enumerate(self.plan.engines):
                if not todo[name]:
                    self.progress.message(f"[net@{name}] already measured in {self.store.dir}; nothing left to run")
                    continue
                left = sum(1 for n in self.plan.engines[index:] if todo[n])
                self._engine(find_engine(name, engines), index, todo[name], state, left)
        return self.records

    def _engine(self, engine: Engine, index: int, units: list[Unit], state: RunState, engines_left: int) -> None:
        label = f"net@{engine.name}"
        workload = self.workload(engine.name)
        sink = Sink(self.store, self.progress.message)
        tally = SessionTally(self.progress, len(units))

        def unit_done(unit: Unit, summary: str) -> None:
            tally.done()
            self.progress.unit_done(label, unit.describe(), summary)

        start = time.monotonic()
        precision = session_precision(self.plan.precision, self.plan.budget_seconds, self.started, start,
                                      engines_left)
        try:
            with self.times.spec(label), NetSession(engine, self.plan, self.workdir, self.run_dir, state,
                                                    self.progress.message, index, times=self.times) as session:
                outcome = run_units([(workload, units)], session, sink, unit_done, precision,
                                    more=tally.more)
                line = short_message(label, outcome, self.plan.precision)
                if line:
                    self.progress.message(line)
        except StorprofError as e:
            self.progress.message(f"[{label}] failed: {first_line(e)}")
            measured = {(r.path, r.namespace, r.workload, r.repeat) for r in sink.records if isinstance(r, NetRecord)}
            context = net_context(self.plan.run_id, engine, host_fs_type(self.workdir))
            for unit in units:
                _, path, ns, name, repeat = unit.key
                if (path, ns, name, repeat) not in measured:
                    sink.emit(workload.record(context, repeat, name, path, ns, "failed",
                                              error=f"the session failed: {first_line(e)}"))
        tally.close()
        self.records += [r for r in sink.records if isinstance(r, NetRecord)]
