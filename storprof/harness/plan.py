"""What a sweep will do: driver specs x workloads x placements, with their settings, before anything runs.

The CLI turns options into one SweepPlan (presets, job files, probe plans, all checked); the sweep
asks the plan for its workloads and for the room one spec needs. Nothing here starts a daemon.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storprof.engine.drivers import DriverSpec
from storprof.errors import UserError
from storprof.harness import registry
from storprof.harness.layout import new_run_id
from storprof.harness.workload import Workload
from storprof.results import ResultSet
from storprof.results.records import FioRecord
from storprof.storage.build import BuildPlan
from storprof.storage.daemonstart import DaemonStartPlan
from storprof.storage.fio.cells import FioCells, data_file_name
from storprof.storage.fio.check import check_with_fio
from storprof.storage.fio.fiojob import FioJob
from storprof.storage.fio.job import load_job
from storprof.storage.fio.options import MAX_FILES
from storprof.storage.fio.placements import AA, DEFAULT_PLACEMENTS
from storprof.storage.layers import LayerPlan
from storprof.storage.maxdepth import MaxDepthPlan
from storprof.storage.pgbench import PostgresPlan
from storprof.storage.probes.copyup import CopyUpPlan
from storprof.storage.probes.deepstack import DeepStackPlan
from storprof.storage.probes.lookup import LookupPlan
from storprof.storage.probes.pagecache import PageCachePlan
from storprof.storage.probes.unionops import UnionOpsPlan
from storprof.storage.snapbench import SnapBenchPlan

# Union probes: workloads that are not fio jobs, selected with --jobs by these names (the registry's).
PROBES = registry.PROBES
# Of those, the ones that compare a union container with the host, so need the union placement.
UNION_PROBES = registry.UNION_PROBES


@dataclass(frozen=True)
class Preset:
    """What a sweep runs when options do not say: sizes and times (None: the job file's own),
    repeats, and the jobs (None: every built-in job and both probes)."""

    size: str | None
    runtime: float | None
    ramp_time: float | None
    repeat: int
    jobs: tuple[str, ...] | None = None
    budget_minutes: float | None = None    # None: a fixed number of repeats
    placements: tuple[str, ...] = DEFAULT_PLACEMENTS
    aa_jobs: tuple[str, ...] | None = None    # the jobs host-aa runs for, when it is a placement
    plans: Mapping[str, Any] = field(default_factory=lambda: registry.plans("thorough"))   # by workload name

    def plan(self, name: str) -> Any:
        """The plan of a registered workload in this preset."""
        return self.plans[name]

# The thorough default: the job files' own sizes and times, every job, probe and placement.
THOROUGH = Preset(size=None, runtime=None, ramp_time=None, repeat=3)
# The README's sweep, a budget of 9.5 minutes for every spec this host runs, its daemons, images
# and base rounds included (the scheduler leaves out base runs past the second repeat once a
# session's share is spent; the tables and the last teardown take the rest of its 10): what
# changes answers.
# Runs of 0.5 s: for the same fio time, many short runs gave intervals half as wide as fewer long
# ones here (docs/findings.md, 'Fewer, longer runs or more, shorter ones'). host, union and bind
# (bind is the in-container baseline: union ÷ bind is the driver alone; volume reads like bind).
# It keeps the three I/O patterns whose union cost differs between drivers (4 KiB random reads and
# writes, a database's fsync), every union probe at a telling size, and what container create and
# a container's space cost. Left out, for `storprof sweep` without --quick: seqread-1m (the
# noisiest row, ±9.5% at 16 runs), randrw-4k-70-30 and seqwrite-1m, the lower-layer reads (every
# driver 1.00x once the data files were fixed), the metadata jobs (2 s of work a run by design),
# the volume placement (it reads like bind), commit and depth timing. host-aa, the host run again,
# is the A/A control whose truth is 1.00: the noise floor and how often intervals cover the truth;
# for randread-4k alone, which keeps a sweep of every spec here (11 with the containerd store) in time.
# Of the union probes it runs the ones compared with the host (copy-up, deep stacks, lookup, the
# union operations and the page cache); the depth search, daemon restarts and the snapshotter
# benchmark (7-20 s a spec each here: 125-layer loads, restarts, commit chains) are facts of the
# driver and engine rather than of the machine's noise, and run in the thorough sweep or by name.
QUICK = Preset(size="64m", runtime=0.5, ramp_time=0.0, repeat=3, budget_minutes=9.5,
               jobs=("randread-4k", "randwrite-4k", "fsync-write-4k", *registry.QUICK_PROBES),
               placements=("host", "union", "bind", AA), aa_jobs=("randread-4k",),
               plans=registry.plans("quick"))

# THE QUICK SWEEP'S TIME, written here and only here: the "Total wall time" line of
# `storprof sweep --quick` in the latest clean-clone run on the development machine (set-up not
# counted). `--help` states quick_sweep_time(); README.md and docs/sample.md carry the same words,
# and tests/unit/test_plan.py fails until all three agree and this is a measured number. None
# (the placeholder) until the run after the last change to the quick sweep has been made.
QUICK_SWEEP_SECONDS: int | None = 586


def quick_sweep_time() -> str:
    """The quick sweep's time as the docs and --help say it."""
    if QUICK_SWEEP_SECONDS is None:
        return "[QUICK_SWEEP_SECONDS: to be measured]"
    return f"about {round(QUICK_SWEEP_SECONDS / 60)} minutes ({QUICK_SWEEP_SECONDS} s)"


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep needs to know before it starts, built once from every value (frozen)."""

    specs: list[DriverSpec]
    jobs: list[FioJob]
    placements: tuple[str, ...] = DEFAULT_PLACEMENTS
    repeat: int = 3
    workdir: Path = Path("storprof-work")
    docker_host: str | None = None
    image: str | None = None
    run_id: str = field(default_factory=new_run_id)
    fio_timeout: float = 3600
    storage_opts: list[str] = field(default_factory=list)   # e.g. overlay2.size=10G
    layers: LayerPlan | None = None           # also time layer operations in each daemon (storprof layers)
    copyup: CopyUpPlan | None = None          # union probes: the first write into a lower-layer file
    deep_stack: DeepStackPlan | None = None   # union probes: lookups at the bottom of K layers
    lookup: LookupPlan | None = None          # union probes: stat() of many files an image ships
    precision: float | None = None            # extra repeats towards this ratio half-width (adaptive)
    budget_seconds: float | None = None       # the sweep's wall time, shared out among the specs
    aa_jobs: tuple[str, ...] | None = None    # the jobs the host-aa control runs for (None: all)
    union_ops: UnionOpsPlan | None = None     # many small appends, a directory rename, a chown in a lower layer
    page_cache: PageCachePlan | None = None   # page cache of K containers reading one lower-layer file
    build: BuildPlan | None = None            # a docker build of many small files, step by step
    postgres: PostgresPlan | None = None      # pgbench against PostgreSQL on every placement
    snapbench: SnapBenchPlan | None = None    # containerd's snapshotter benchmark, through Docker
    max_depth: MaxDepthPlan | None = None     # the deepest image that creates and runs, by search
    daemon_start: DaemonStartPlan | None = None   # dockerd start with N images (restarts the daemon: last)

    def storage_opts_for(self, driver: str) -> list[str]:
        """Only a driver's own options (`<driver>.key=value`): dockerd refuses another's."""
        return [o for o in self.storage_opts if o.split(".", 1)[0] == driver]

    def workloads(self) -> list[Workload]:
        """The workloads in the order they run in each session: fio cells, probes, layer timing."""
        sides = ("host", "union") if "host" in self.placements and not self.docker_host else ("union",)
        out: list[Workload] = []
        if self.jobs:
            out.append(FioCells(self.jobs, self.placements, self.repeat, self.fio_timeout, self.aa_jobs))
        for entry in registry.REGISTRY:
            plan = getattr(self, entry.field)
            if plan:
                out.append(entry.make(plan, self, sides))
        return out

    def done_keys(self, results: ResultSet) -> frozenset:
        """What a results directory already holds, in each workload's own resume keys."""
        keys: set[tuple] = set()
        for workload in self.workloads():
            keys |= workload.done_keys(results)
        return frozenset(keys)

    def backing_size_bytes(self) -> int:
        """Room for every distinct data file on every placement, the lower-layer image (twice:
        vfs copies it into the container), the metadata jobs' files (a fresh directory per repeat,
        kept until the placement goes), the probes' images, layers and fs overhead."""
        files = {data_file_name(j): j.bytes_needed() for j in self.jobs if not j.own_files}
        lower = 2 * sum({data_file_name(j): j.bytes_needed() for j in self.jobs if j.lower_layer}.values())
        # metadata jobs are scaled up to MAX_FILES files per run (fiocells), plus a calibration run
        own = (self.repeat + 1) * sum(j.with_files(MAX_FILES).bytes_needed() // j.numjobs(j.job_indexes()[0])
                                      for j in self.jobs if j.own_files)
        extra = sum(p.bytes_needed() for p in (getattr(self, e.field) for e in registry.REGISTRY) if p)
        return max(4 << 30, len(self.placements) * (sum(files.values()) + own) + lower + (2 << 30) + extra)

    def check_resumable(self, results: ResultSet) -> None:
        """Refuse to continue a results directory measured with other job settings: their rows
        could not share a table with the new ones."""
        planned = {j.name: {"size": j.option("size"), "runtime": j.option("runtime"),
                            "ramp_time": j.option("ramp_time")} for j in self.jobs}
        for r in results.of(FioRecord):
            if r.job in planned:
                had = {k: r.params.get(k) for k in planned[r.job]}
                if had != planned[r.job]:
                    diff = ", ".join(f"{k} {had[k]} (now {v})" for k, v in planned[r.job].items() if had[k] != v)
                    raise UserError(f"{results.dir} measured {r.job} with {diff}; resume with the same options")


@dataclass(frozen=True)
class JobSettings:
    """What the sweep forces into every job: sizes and times (None keeps the job file's own)."""

    size: str | None
    runtime: float | None
    ramp_time: float | None
    cpus_allowed: str | None
    allow_options: tuple[str, ...] = ()


def load_jobs(names: list[str], settings: JobSettings) -> list[FioJob]:
    """The fio jobs among `names` (built-in names or paths; not the probes), checked against the
    allowlist, with the settings forced in, then by fio's own parser."""
    jobs = [load_job(name, allowed_extra=settings.allow_options)
            .with_overrides(size=settings.size, runtime=settings.runtime, ramp_time=settings.ramp_time,
                            cpus_allowed=settings.cpus_allowed)
            for name in names if name not in PROBES]
    if len({j.name for j in jobs}) != len(jobs):
        raise UserError("two jobs share a name; rename one of the job files")
    for job in jobs:
        check_with_fio(job)
    return jobs


def probe_plans(names: list[str], placements: tuple[str, ...], preset: Preset | None = None,
                overrides: Mapping[str, Any] | None = None) -> dict:
    """The registered workloads asked for among `names`, each with the preset's plan or the one an
    option made (`overrides`, by name), checked: keyword arguments of SweepPlan."""
    preset, overrides = preset or THOROUGH, overrides or {}
    plans = {e.field: overrides.get(e.name) or preset.plan(e.name) if e.name in names else None
             for e in registry.REGISTRY if e.by_jobs}
    for plan in plans.values():
        if plan:
            plan.validate()
    probes = [n for n in names if n in UNION_PROBES]
    if probes and "union" not in placements:
        raise UserError(f"the {' and '.join(probes)} probe{'s' if len(probes) > 1 else ''} measure"
                        f"{'' if len(probes) > 1 else 's'} the union placement; add union to --placements")
    return plans
