"""`storprof net`: run the plan's rounds over every network path, one record per client run.

The storage sweep's machinery, for the network half: an ownership record (RunState) written
before anything is made, ephemeral daemons, records appended as each run ends (ResultsStore),
progress, and resume keys. Client output is kept under raw/net/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

from storprof.engine.engines import Engine, all_engines
from storprof.engine.engines import find as find_engine
from storprof.errors import StorprofError, first_line
from storprof.harness.layout import RUNTIME_ROOT
from storprof.harness.state import RunState, dead_runs
from storprof.host import safepath
from storprof.host.proc import PACKAGES, CommandTimeout, run
from storprof.host.sandbox import INPUT_DIR
from storprof.network import tools as nettools
from storprof.network.plan import CONNECTIONS, PATHS, WORKLOADS, NetPlan
from storprof.network.session import NetSession
from storprof.results import ResultSet, ResultsStore
from storprof.results.records import NetRecord

# The tools each workload needs on the host, the client first.
NEEDS = {"throughput": ("iperf3",), "latency": ("sockperf",), "connect": ("wrk", "nginx"), "http": ("wrk", "nginx")}
# Always needed: namespaces, the sandbox, reading socket tables, the daemons.
BASE_TOOLS = ("ip", "iptables", "bwrap", "nsenter", "ss", "dockerd")
WRK_SCRIPT = "report.lua"

Key = tuple[str, str, str, str, int]       # engine, path, namespace, workload, repeat


def missing_tools(tools: tuple[str, ...]) -> dict[str, str]:
    """tool -> its package, for each tool not on PATH."""
    return {t: PACKAGES.get(t, t) for t in tools if shutil.which(t) is None}


def tool_versions() -> dict[str, str]:
    """One line of each tool's own version output."""
    versions = {}
    for tool, argv in {"iperf3": ["iperf3", "--version"], "sockperf": ["sockperf", "--version"],
                       "wrk": ["wrk", "-v"], "nginx": ["nginx", "-v"]}.items():
        if shutil.which(tool) is None:
            continue
        try:
            out = run(argv, timeout=30, check=False)
        except StorprofError:
            continue
        lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
        versions[tool] = next((ln for ln in lines if any(ch.isdigit() for ch in ln)), "")[:120]
    return versions


def done_keys(previous: ResultSet, plan: NetPlan) -> frozenset[Key]:
    """What --resume need not run again: each (engine, workload, round) whose every path ended ok
    within one run. A round a kill cut short is measured again whole, so that every ratio pairs
    runs of the same round of the same run."""
    slots = set(plan.slots())
    ran: dict[tuple[str, str, int, str], set[tuple[str, str]]] = {}
    for r in previous.of(NetRecord):
        if r.status == "ok":
            ran.setdefault((r.engine, r.workload, r.repeat, r.run_id), set()).add((r.path, r.namespace))
    done = set()
    for (engine, workload, repeat, _), measured in ran.items():
        if slots <= measured:
            done |= {(engine, path, ns, workload, repeat) for path, ns in slots}
    return frozenset(done)


class NetRun:
    def __init__(self, plan: NetPlan, store: ResultsStore, progress, workdir: Path,
                 done: frozenset[Key] = frozenset()):
        self.plan = plan
        self.store = store
        self.progress = progress
        self.workdir = workdir
        self.done = done
        self.versions = tool_versions()
        self.run_dir = workdir / plan.run_id
        self.records: list[NetRecord] = []

    def units(self, engine: str) -> list[tuple[int, str, str, str]]:
        """(repeat, workload, path, namespace) still to run for an engine, in the plan's order."""
        return [(r, w, p, ns) for r, units in enumerate(self.plan.rounds(engine), 1) for w, p, ns in units
                if (engine, p, ns, w, r) not in self.done]

    def run(self) -> list[NetRecord]:
        safepath.make_private_dir(self.workdir, "work directory")
        killed = dead_runs(self.workdir)
        if killed:
            self.progress.message(f"{self.workdir} holds leftovers of {len(killed)} killed run(s) "
                                  f"({', '.join(killed)}); 'storprof clean --workdir {self.workdir}' removes them")
        state = RunState(self.workdir, self.plan.run_id, sys.argv)
        state.record("dir", what="run", path=str(self.run_dir))
        try:
            self.run_dir.mkdir(mode=0o700)
            (self.run_dir / WRK_SCRIPT).write_text(nettools.WRK_REPORT_LUA)
            engines = all_engines()
            todo = {name: self.units(name) for name in self.plan.engines}
            self.progress.add_total(sum(len(u) for u in todo.values()))
            for index, name in enumerate(self.plan.engines):
                if not todo[name]:
                    self.progress.message(f"[net@{name}] already measured in {self.store.dir}; nothing left to run")
                    continue
                self._engine(find_engine(name, engines), index, todo[name], state)
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                RUNTIME_ROOT.rmdir()
            left = state.finish()
            if left:
                self.progress.message(f"left behind: {'; '.join(left)}; 'storprof clean --workdir {self.workdir}' "
                                      "removes it")
        return self.records

    def _engine(self, engine: Engine, index: int, units: list, state: RunState) -> None:
        label = f"net@{engine.name}"
        try:
            session = NetSession(engine, self.plan, self.workdir, self.run_dir, state, self.progress.message, index)
            with session:
                for repeat, workload, path, ns in units:
                    record = self._measure(session, engine, repeat, workload, path, ns)
                    self.store.append(record)
                    self.records.append(record)
                    self.progress.unit_done(label, f"{workload} {path}" + (f"@{ns}" if path == "host" else "")
                                            + f" r{repeat}", _summary(record))
        except StorprofError as e:
            self.progress.message(f"[{label}] failed: {first_line(e)}")
            for repeat, workload, path, ns in units:
                if not any(r.engine == engine.name and (r.path, r.namespace, r.workload, r.repeat)
                           == (path, ns, workload, repeat) for r in self.records):
                    record = self._record(engine, "", repeat, workload, path, ns, "failed",
                                          error=f"the session failed: {first_line(e)}")
                    self.store.append(record)
                    self.records.append(record)

    def _record(self, engine: Engine, docker_version: str, repeat: int, workload: str, path: str, ns: str,
                status: str, **fields) -> NetRecord:
        return NetRecord(run_id=self.plan.run_id, engine=engine.name, docker_version=docker_version,
                         kernel=os.uname().release, namespace=ns, path=path, workload=workload, repeat=repeat,
                         status=status, **fields)

    def _measure(self, session: NetSession, engine: Engine, repeat: int, workload: str, path: str,
                 ns: str) -> NetRecord:
        spec = WORKLOADS[workload]
        tool = spec.tool
        base = dict(tool=tool, tool_version=self.versions.get(tool, ""))
        missing = missing_tools(NEEDS[workload])
        if missing:
            why = "; ".join(f"{t} is not installed (package {p})" for t, p in missing.items())
            return self._record(engine, session.docker_version, repeat, workload, path, ns, "skipped",
                                error=why, **base)
        endpoint = session.endpoints.get((path, ns))
        if endpoint is None:
            why = session.skipped.get(ns, f"{path} has no server in the {ns} namespace")
            return self._record(engine, session.docker_version, repeat, workload, path, ns, "skipped",
                                error=why, **base)
        host, port = endpoint.target(tool)
        seconds = self.plan.settings.seconds
        inputs: dict[str, Path] = {}
        if tool == "iperf3":
            argv = nettools.iperf3_client_argv(host, port, seconds)
        elif tool == "sockperf":
            argv = nettools.sockperf_client_argv(host, port, seconds)
        else:
            inputs = {WRK_SCRIPT: self.run_dir / WRK_SCRIPT}
            argv = nettools.wrk_argv(f"http://{host}:{port}/", seconds, CONNECTIONS[workload],
                                     f"{INPUT_DIR}/{WRK_SCRIPT}", workload == "connect")
        params = {"seconds": seconds, "argv": argv, "what": PATHS[path].what}
        if tool == "wrk":
            params["connections"] = CONNECTIONS[workload]
        target = f"{host}:{port}"
        started = time.monotonic()
        try:
            out = run(session.client_argv(endpoint, argv, inputs), timeout=seconds + 60, check=False)
        except CommandTimeout as e:
            return self._record(engine, session.docker_version, repeat, workload, path, ns, "failed",
                                target=target, params=params, error=first_line(e), **base)
        params["wall_seconds"] = round(time.monotonic() - started, 3)
        text = out.stdout + ("\n" + out.stderr if out.stderr.strip() else "")
        raw = self.store.save_raw(f"net/{engine.name}/{path}-{ns}-{workload}-r{repeat}.txt", text)
        try:
            metrics = {"iperf3": nettools.parse_iperf3, "sockperf": nettools.parse_sockperf,
                       "wrk": nettools.parse_wrk}[tool](out.stdout if tool != "sockperf" else text)
        except nettools.ToolOutputError as e:
            return self._record(engine, session.docker_version, repeat, workload, path, ns, "failed",
                                target=target, params=params, raw=raw,
                                error=f"{first_line(e)} (exit {out.returncode})", **base)
        status, error = "ok", None
        if tool == "wrk" and metrics.get("errors", 0) > 0:
            # A request that failed is not a request served: the rate would flatter the path.
            status, error = "failed", f"wrk counted {metrics['errors']:.0f} socket or HTTP errors"
        return self._record(engine, session.docker_version, repeat, workload, path, ns, status, target=target,
                            metrics=metrics, params=params, raw=raw, error=error, **base)


def _summary(record: NetRecord) -> str:
    if record.status != "ok":
        return f"{record.status}: {record.error or ''}"[:80]
    m = record.metrics
    if record.workload == "throughput":
        return f"{m['bits_per_second'] / 1e9:.2f} Gbit/s"
    if record.workload == "latency":
        return f"p50 {m['p50_us']:.1f} µs, p99.9 {m['p99_9_us']:.1f} µs"
    return f"{m['requests_per_second']:,.0f} req/s"

