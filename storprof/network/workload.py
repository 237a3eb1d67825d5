"""`storprof net` as a workload of the harness: its units (one client run of one workload over one
path in one round), how one runs, and where extra rounds go, so that the one scheduler runs net
as it runs storage: interleaved, paired by round, adaptive towards a precision target.

A group is a net workload (throughput, latency, ...); a round of it is every (path, namespace)
slot once, shuffled. For the scheduler's widths a record's job is its namespace and its placement
its path, "host" being that namespace's baseline: a path pairs with its own namespace's host.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import cast

from storprof.errors import StorprofError, first_line
from storprof.harness.session import Session
from storprof.harness.workload import Done, Sink, Unit
from storprof.host.proc import PACKAGES, CommandTimeout, run
from storprof.host.sandbox import INPUT_DIR
from storprof.network import tools as nettools
from storprof.network.plan import (
    CONNECTIONS,
    HOST,
    PATHS,
    PGBENCH_CLIENTS,
    PGBENCH_SCALE,
    PGBENCH_WORKLOADS,
    WORKLOADS,
    NetPlan,
)
from storprof.network.session import NetSession
from storprof.results import ResultSet
from storprof.results.records import NetRecord, Record, RunContext
from storprof.storage import pgbench

# The tools each workload needs on the host, the client first.
NEEDS = {"throughput": ("iperf3",), "latency": ("sockperf",), "connect": ("wrk", "nginx"), "http": ("wrk", "nginx"),
         **dict.fromkeys(PGBENCH_WORKLOADS, ())}      # the server's own files: NetSession.postgres says
WRK_SCRIPT = "report.lua"
WORKLOAD = "net"

Key = tuple[str, str, str, str, int]       # engine, path, namespace, workload, repeat


def missing_tools(tools: tuple[str, ...]) -> dict[str, str]:
    """tool -> its package, for each tool not on PATH."""
    return {t: PACKAGES.get(t, t) for t in tools if shutil.which(t) is None}


def unit_for(engine: str, workload: str, path: str, ns: str, repeat: int) -> Unit:
    where = f"{path}@{ns}" if path == HOST else path
    return Unit(WORKLOAD, workload, where, repeat, (engine, path, ns, workload, repeat),
                label=f"{workload} {where} r{repeat + 1}")


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


class NetPaths:
    """One engine's network paths: the harness Workload (and Adaptive) contract."""

    name = WORKLOAD

    def __init__(self, plan: NetPlan, engine: str, run_dir: Path, versions: dict[str, str]):
        self.plan = plan
        self.engine = engine
        self.run_dir = run_dir
        self.versions = versions

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return set(done_keys(results, self.plan))

    def units(self, spec: str, done: Done) -> list[Unit]:
        """(workload, path, namespace) of each round still to run, in the plan's order."""
        return [unit_for(self.engine, w, p, ns, r) for r, units in enumerate(self.plan.rounds(self.engine))
                for w, p, ns in units if (self.engine, p, ns, w, r) not in done]

    def prepare(self, session: Session, sink: Sink) -> None:
        """The servers are the session's; wrk's report script is the run's (NetRun writes it)."""

    def cleanup(self, session: Session) -> None:
        """Nothing of its own: the session removes the servers, daemons and namespaces."""

    def group_of(self, record: Record) -> str | None:
        if isinstance(record, NetRecord) and record.engine == self.engine:
            return record.workload
        return None

    def cell_of(self, record: Record) -> tuple[str, str, float] | None:
        """(namespace, path, the primary metric) of a run that ended ok."""
        if not isinstance(record, NetRecord):
            return None
        value = record.metrics.get(WORKLOADS[record.workload].metric) if record.status == "ok" else None
        return (record.namespace, record.path, float(value)) if value else None

    def extra_round(self, spec: str, group: str, repeat: int) -> list[Unit]:
        return [unit_for(self.engine, group, p, ns, repeat)
                for p, ns in self.plan.extra_round(self.engine, group, repeat)]

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        _, path, ns, workload, repeat = unit.key
        record = self.measure(cast(NetSession, session), sink, repeat, workload, path, ns)
        sink.emit(record)
        return summary(record)

    def record(self, context: RunContext, repeat: int, workload: str, path: str, ns: str, status: str,
               **fields) -> NetRecord:
        return NetRecord(context=context, namespace=ns, path=path, workload=workload, repeat=repeat, status=status,
                         **fields)

    def measure(self, session: NetSession, sink: Sink, repeat: int, workload: str, path: str,
                ns: str) -> NetRecord:
        tool = WORKLOADS[workload].tool

        def record(status: str, **fields) -> NetRecord:
            return self.record(session.context, repeat, workload, path, ns, status, tool=tool,
                               tool_version=self.versions.get(tool, ""), **fields)

        missing = missing_tools(NEEDS[workload])
        if missing:
            why = "; ".join(f"{t} is not installed (package {p})" for t, p in missing.items())
            return record("skipped", error=why)
        if tool == "pgbench" and session.postgres is None:
            return record("skipped", error=session.postgres_skip or "no PostgreSQL server")
        endpoint = session.endpoints.get((path, ns))
        if endpoint is None:
            why = session.skipped.get(ns, f"{path} has no server in the {ns} namespace")
            return record("skipped", error=why)
        host, port = endpoint.target(WORKLOADS[workload].server or tool)
        seconds = self.plan.settings.seconds
        client, params = self._client(session, endpoint, workload, host, port)
        target = f"{host}:{port}"
        started = time.monotonic()
        try:
            out = run(client, timeout=seconds + 60, check=False)
        except CommandTimeout as e:
            return record("failed", target=target, params=params, error=first_line(e))
        params["wall_seconds"] = round(time.monotonic() - started, 3)
        text = out.stdout + ("\n" + out.stderr if out.stderr.strip() else "")
        raw = sink.save_raw(f"net/{self.engine}/{path}-{ns}-{workload}-r{repeat}.txt", text)
        try:
            if tool == "pgbench":
                metrics = pgbench.client_metrics(text, out.returncode)
            else:
                metrics = {"iperf3": nettools.parse_iperf3, "sockperf": nettools.parse_sockperf,
                           "wrk": nettools.parse_wrk}[tool](out.stdout if tool != "sockperf" else text)
        except (nettools.ToolOutputError, StorprofError) as e:
            return record("failed", target=target, params=params, raw=raw,
                          error=f"{first_line(e)} (exit {out.returncode})")
        status, error = "ok", None
        if tool == "wrk" and metrics.get("errors", 0) > 0:
            # A request that failed is not a request served: the rate would flatter the path.
            status, error = "failed", f"wrk counted {metrics['errors']:.0f} socket or HTTP errors"
        return record(status, target=target, metrics=metrics, params=params, raw=raw, error=error)


    def _client(self, session: NetSession, endpoint, workload: str, host: str, port: int) -> tuple[list[str], dict]:
        """The client's sandboxed command for one run, and the params its record keeps."""
        tool, seconds = WORKLOADS[workload].tool, self.plan.settings.seconds
        inputs: dict[str, Path] = {}
        if tool == "pgbench":
            assert session.postgres is not None
            argv = pgbench.client_argv(session.postgres, host, port, seconds, PGBENCH_CLIENTS,
                                       workload == "pgbench-connect")
        elif tool == "iperf3":
            argv = nettools.iperf3_client_argv(host, port, seconds)
        elif tool == "sockperf":
            argv = nettools.sockperf_client_argv(host, port, seconds)
        else:
            inputs = {WRK_SCRIPT: self.run_dir / WRK_SCRIPT}
            argv = nettools.wrk_argv(f"http://{host}:{port}/", seconds, CONNECTIONS[workload],
                                     f"{INPUT_DIR}/{WRK_SCRIPT}", workload == "connect")
        params: dict = {"seconds": seconds, "argv": argv, "what": PATHS[endpoint.path.name].what}
        if tool == "wrk":
            params["connections"] = CONNECTIONS[workload]
        if tool == "pgbench":
            params.update(connections=PGBENCH_CLIENTS, scale=PGBENCH_SCALE, data=WORKLOADS[workload].server)
            return session.pgbench_argv(endpoint, argv), params
        return session.client_argv(endpoint, argv, inputs), params


def summary(record: NetRecord) -> str:
    """One line for the progress display."""
    if record.status != "ok":
        return f"{record.status}: {record.error or ''}"[:80]
    m = record.metrics
    if record.workload == "throughput":
        return f"{m['bits_per_second'] / 1e9:.2f} Gbit/s"
    if record.workload == "latency":
        return f"p50 {m['p50_us']:.1f} µs, p99.9 {m['p99_9_us']:.1f} µs"
    if record.workload in PGBENCH_WORKLOADS:
        return f"{m['tps']:,.0f} tps, latency {m['latency_average_ms']:.2f} ms"
    return f"{m['requests_per_second']:,.0f} req/s"
