"""storprof sweep and storprof layers: check the machine can run a plan, then run it into a
results directory. The CLI builds the plan between the two, from what the machine check found."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from storprof import results
from storprof.engine import drivers
from storprof.engine.daemon import AttachedDaemon
from storprof.engine.engines import all_engines
from storprof.errors import StorprofError, UserError
from storprof.harness.interrupt import interruptible
from storprof.harness.plan import SweepPlan
from storprof.harness.sweep import Sweep
from storprof.harness.timeaccount import PLAN, TimeAccount
from storprof.host import backing
from storprof.host.mounts import host_fs_type
from storprof.host.proc import require
from storprof.operations.workdir import make_workdir
from storprof.results import ResultSet
from storprof.storage.layers import LayerPlan

# Seconds of a --budget kept back for reading the results and printing the tables.
TABLES_RESERVE = 5.0


@dataclass(frozen=True)
class Machine:
    """What the machine check found: the specs to run (none when attached) and the work directory."""

    specs: list[drivers.DriverSpec]
    workdir: Path


@dataclass(frozen=True)
class SweepRun:
    results_dir: Path
    outcomes: list
    account: TimeAccount            # charge the statistics and views to it, then finish_account()
    store: results.ResultsStore

    @property
    def measured_any(self) -> bool:
        return any(o.status == "ok" for o in self.outcomes)

    def finish_account(self) -> dict:
        """The run is over: its time account, closed and kept in meta.json."""
        return self.account.finish(self.store)


def previous_results(results_dir: Path) -> ResultSet:
    """The results --resume continues, which must be a storprof results directory."""
    previous = ResultSet.load(results_dir)
    if not (Path(results_dir) / results.META_FILE).is_file():
        raise UserError(f"{results_dir} is not a storprof results directory (no {results.META_FILE})")
    return previous


def ready_machine(workdir: Path, driver_list: list[str], docker_host: str | None,
                  layers: LayerPlan | None) -> Machine:
    """The machine can run a sweep: dockerd, root, a work directory on a disk, the specs; or,
    attached, a daemon that answers. Nothing is made but the work directory."""
    if docker_host:
        AttachedDaemon(docker_host).stop()    # unreachable: say so before making a results directory
        return Machine([], make_workdir(workdir, on_disk=False))   # only the run's ownership record goes there
    require("dockerd")
    if os.geteuid() != 0:
        raise StorprofError("ephemeral daemons need root: run as root, or attach to a running "
                            "daemon with --docker-host")
    workdir = make_workdir(workdir)
    backing.check_workdir(workdir)
    host_fs = host_fs_type(workdir)
    engines = all_engines()
    specs = [drivers.DriverSpec.parse(t, host_fs, engines) for t in driver_list] or drivers.default_specs(host_fs,
                                                                                                          engines)
    if layers is not None:
        for spec in specs:
            layers.validate(spec.driver)
    return Machine(specs, workdir)


def remaining_budget(budget_seconds: float | None, started: float) -> float | None:
    """What checking took counts against --budget; time to print the tables is kept back."""
    if budget_seconds is None:
        return None
    return max(30.0, budget_seconds - (time.monotonic() - started) - TABLES_RESERVE)


def plan_meta(plan: SweepPlan, command: str) -> dict:
    """meta.json's account of the plan: what ran, with which tools."""
    return {"command": command, "run_id": plan.run_id, "placements": list(plan.placements),
            "jobs": [j.name for j in plan.jobs], "repeat": plan.repeat,
            "layers": vars(plan.layers) if plan.layers else None,
            "copyup": vars(plan.copyup) if plan.copyup else None,
            "deep_stack": vars(plan.deep_stack) if plan.deep_stack else None,
            "lookup": vars(plan.lookup) if plan.lookup else None,
            **{name: vars(p) if p else None for name, p in (
                ("union_ops", plan.union_ops), ("page_cache", plan.page_cache), ("build", plan.build),
                ("postgres", plan.postgres),
                ("snapbench", plan.snapbench),
                ("max_depth", plan.max_depth), ("daemon_start", plan.daemon_start))},
            "drivers": [str(s) for s in plan.specs] or [f"attached:{plan.docker_host}"],
            **results.tool_versions()}


def run_sweep(plan: SweepPlan, out: Path | None, meta: dict, command: str, quiet: bool,
              previous: ResultSet | None = None, started: float | None = None) -> SweepRun:
    """Run the plan (only what `previous` lacks, when resuming into it) into a results directory
    whose meta.json holds the plan, `command` and `meta`. The time account starts at `started`
    (time.monotonic() when the command began; its checks until now are planning)."""
    account = TimeAccount(started)
    account.add(PLAN, time.monotonic() - account.started)
    with account.phase(PLAN):
        done: frozenset = frozenset()
        if previous is not None:
            plan.check_resumable(previous)
            done = plan.done_keys(previous)
        if not plan.docker_host:
            backing.require_free_space(plan.workdir, plan.backing_size_bytes(),
                                       "one driver's data root, fio files, images and layers "
                                       "(use a smaller --size or --layer-sizes)")
        store = results.ResultsStore(out or results.default_out_dir(), {**plan_meta(plan, command), **meta},
                                     resume=previous is not None)
    outcomes = interruptible(store.dir, quiet,
                             lambda progress: Sweep(plan, store, progress, done=done, times=account).run())
    return SweepRun(store.dir, outcomes, account, store)
