"""The sweep's workloads beside fio, registered once: what a new workload adds is one entry here
(and the SweepPlan field that holds its plan), not edits across plan, CLI and views.

The entries are in the order they run within a session: what restarts the daemon comes last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storprof.harness.workload import Workload
from storprof.storage.build import Build, BuildPlan
from storprof.storage.daemonstart import DaemonStart, DaemonStartPlan
from storprof.storage.layers import SWEEP_QUICK_PLAN, LayerPlan, LayerTiming
from storprof.storage.maxdepth import MaxDepth, MaxDepthPlan
from storprof.storage.pgbench import DIRS as POSTGRES_PLACEMENTS
from storprof.storage.pgbench import PostgresPlan
from storprof.storage.postgres import Postgres
from storprof.storage.probes.copyup import CopyUp, CopyUpPlan
from storprof.storage.probes.deepstack import DeepStack, DeepStackPlan
from storprof.storage.probes.lookup import Lookup, LookupPlan
from storprof.storage.probes.pagecache import PageCache, PageCachePlan
from storprof.storage.probes.unionops import UnionOps, UnionOpsPlan
from storprof.storage.snapbench import SnapBench, SnapBenchPlan

if TYPE_CHECKING:
    from storprof.harness.plan import SweepPlan

# The workload made from its plan, the sweep's plan and the sides it compares (host and union,
# or union alone where the sweep cannot run on the host).
Factory = Callable[[Any, "SweepPlan", tuple[str, ...]], Workload]


@dataclass(frozen=True)
class Registered:
    """One workload: its name (what --jobs selects it by), the SweepPlan field that holds its
    plan, the plans of the two presets, and how to make it."""

    name: str
    field: str
    quick: Any            # its plan in `storprof sweep --quick`
    thorough: Any         # its plan in `storprof sweep`
    make: Factory
    union: bool = False   # compares a union container with the host: needs the union placement
    by_jobs: bool = True  # selected by --jobs (layer timing is on unless --no-layers)
    in_quick: bool = True  # one of `--quick`'s default jobs (else it runs there only when --jobs names it)


def _paired(kind) -> Factory:
    """The probes that run host and union side by side, repeat by repeat."""
    return lambda plan, sweep, sides: kind(plan, sweep.repeat, sides)


def _placed(kind) -> Factory:
    """The workloads that run on every placement of the sweep (the host's only where it is measured)."""
    return lambda plan, sweep, sides: kind(plan, sweep.repeat, tuple(
        p for p in sweep.placements if p in POSTGRES_PLACEMENTS or (p == "host" and "host" in sides)))


def _alone(kind) -> Factory:
    """The workloads that measure the engine once per spec."""
    return lambda plan, sweep, sides: kind(plan)


REGISTRY: tuple[Registered, ...] = (
    Registered("copyup", "copyup", CopyUpPlan((64,)), CopyUpPlan((64, 512)), _paired(CopyUp), union=True),
    Registered("deep-stack", "deep_stack", DeepStackPlan((1, 32)), DeepStackPlan((1, 16, 64, 120)),
               _paired(DeepStack), union=True),
    Registered("lookup", "lookup", LookupPlan(2000), LookupPlan(20000), _paired(Lookup), union=True),
    # The quick sizes are the smallest that kept every answer of the larger ones (docs/findings.md,
    # 'The quick sweep's probe sizes'): 4.5 s (overlay2) and 12 s (vfs) less a spec.
    Registered("union-ops", "union_ops",
               UnionOpsPlan(small_files=300, small_bytes=512, tree_files=100, tree_mib=4, chown_mib=16),
               UnionOpsPlan(), _paired(UnionOps), union=True),
    Registered("page-cache", "page_cache", PageCachePlan(containers=2, file_mib=8), PageCachePlan(),
               _paired(PageCache), union=True),
    # A docker build of many small files: 10-40 s a spec and sample, more than --quick's budget has.
    Registered("build", "build", BuildPlan(source_files=500, package_files=5000), BuildPlan(), _paired(Build),
               union=True, in_quick=False),
    # pgbench against PostgreSQL on every placement: about 50 s a placement and sample (thorough).
    Registered("postgres", "postgres", PostgresPlan(scale=2, cold_scale=8, seconds=5), PostgresPlan(),
               _placed(Postgres), in_quick=False),
    Registered("snapbench", "snapbench", SnapBenchPlan(layers=4, files=10, file_kib=64), SnapBenchPlan(),
               _alone(SnapBench)),
    # Docker's graphdrivers stop at 125 layers; the containerd store at the kernel's 500 lower
    # directories (docs/union-workloads.md), so the thorough search goes that far.
    Registered("max-depth", "max_depth", MaxDepthPlan(ceiling=126), MaxDepthPlan(ceiling=500), _alone(MaxDepth)),
    Registered("layers", "layers", SWEEP_QUICK_PLAN, LayerPlan(), _alone(LayerTiming), by_jobs=False),
    # dockerd start with N images: it restarts the daemon, so it runs last.
    Registered("daemon-start", "daemon_start", DaemonStartPlan(image_counts=(0, 20), samples=3), DaemonStartPlan(),
               _alone(DaemonStart)),
)

BY_NAME = {r.name: r for r in REGISTRY}
# What --jobs takes beside fio jobs, and of those the ones that need the union placement.
PROBES = tuple(r.name for r in REGISTRY if r.by_jobs)
UNION_PROBES = tuple(r.name for r in REGISTRY if r.by_jobs and r.union)
QUICK_PROBES = tuple(name for name in UNION_PROBES if BY_NAME[name].in_quick)


def plans(preset: str) -> dict[str, Any]:
    """Every registered workload's plan in a preset ("quick" or "thorough"), by name."""
    return {r.name: getattr(r, preset) for r in REGISTRY}
