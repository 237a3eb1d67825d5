"""storprof net: the engines it runs on, the results it resumes, and the run itself. The CLI
validates the options and builds the NetPlan."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from storprof import results
from storprof.engine.engines import all_engines
from storprof.engine.engines import find as find_engine
from storprof.errors import UserError
from storprof.harness.interrupt import interruptible
from storprof.harness.timeaccount import PLAN, TimeAccount
from storprof.network.plan import NetPlan
from storprof.network.run import BASE_TOOLS, NetRun, done_keys, missing_tools
from storprof.results import ResultSet


@dataclass(frozen=True)
class NetResult:
    results_dir: Path
    records: list
    resumed_any: bool
    account: TimeAccount            # charge the statistics and views to it, then finish_account()
    store: results.ResultsStore

    def finish_account(self) -> dict:
        """The run is over: its time account, closed and kept in meta.json."""
        return self.account.finish(self.store)

    @property
    def measured_any(self) -> bool:
        return any(r.status == "ok" for r in self.records) or self.resumed_any


def check_machine() -> None:
    """Root and the tools the namespaces and daemons need."""
    if os.geteuid() != 0:
        raise UserError("storprof net makes network namespaces and starts dockerd: run it as root")
    missing = missing_tools(BASE_TOOLS)
    if missing:
        raise UserError("missing " + ", ".join(f"{t} (package {p})" for t, p in missing.items()))


def engine_names(names: list[str] | None) -> list[str]:
    """The engines named (each one this host has), or the newest one here when none are."""
    engines = all_engines()
    if not engines:
        raise UserError("no Docker engine here: install docker.io, or run storprof engines fetch")
    names = names if names is not None else [max(engines, key=lambda e: e.version).name]
    if not names:
        raise UserError("--engines is empty; see storprof engines")
    return [find_engine(n, engines).name for n in dict.fromkeys(names)]


def previous_results(resume_dir: Path, seconds: int) -> ResultSet:
    """The results --resume continues: storprof net's, measured with the same --seconds."""
    previous = ResultSet.load(resume_dir)
    before = previous.meta.get("net") or {}
    if not before:
        raise UserError(f"{resume_dir} holds no storprof net results to resume")
    if before.get("seconds") != seconds:
        raise UserError(f"{resume_dir} was measured with --seconds {before.get('seconds')}; resume with the same")
    return previous


def run_net(plan: NetPlan, out: Path | None, meta: dict, workdir: Path, quiet: bool,
            previous: ResultSet | None = None, started: float | None = None) -> NetResult:
    """Run the plan (only the rounds `previous` lacks, when resuming into it) into a results directory.
    The time account starts at `started` (when the command began; its checks until now are planning)."""
    account = TimeAccount(started)
    account.add(PLAN, time.monotonic() - account.started)
    with account.phase(PLAN):
        done = done_keys(previous, plan) if previous is not None else frozenset()
        store = results.ResultsStore(out or results.default_out_dir(), meta, resume=previous is not None)
    records = interruptible(store.dir, quiet,
                            lambda progress: NetRun(plan, store, progress, workdir, done=done, times=account).run())
    return NetResult(store.dir, records, bool(done), account, store)
