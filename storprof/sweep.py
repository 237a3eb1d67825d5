"""The sweep: for each driver spec a backing filesystem, a daemon, the bench image and one
target per placement; then every (repeat, job, placement) cell in an interleaved order.

A driver that cannot run, or fails part-way, becomes a `driver` record with its reason and the
sweep goes on with the next one. Every fio run is appended to the results store as it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import docker.errors
import requests.exceptions

from . import backing, drivers
from .daemon import RUNTIME_ROOT, AttachedDaemon, Daemon, EphemeralDaemon
from .drivers import DriverSpec
from .errors import FioError, StorprofError
from .fiojob import FioJob, parse_job, parse_size
from .fioresult import parse_fio_output
from .mounts import host_fs_type
from .layers import LayerPlan, LayerTimer
from .image import BenchImage, RootfsPlan, plan_rootfs
from .placements import PLACEMENTS, ContainerTarget, HostTarget, Target
from .results import ResultsStore

LABEL = "storprof"


@dataclass(frozen=True)
class Cell:
    repeat: int
    job: str
    placement: str


def plan_order(job_names: list[str], placements: tuple[str, ...], repeat: int) -> list[Cell]:
    """Every (repeat, job, placement), repeats outermost, placements rotated per (repeat, job).

    Consecutive runs of one job move across placements, and each placement is first equally
    often, so drift of the machine (cache warm-up, a noisy neighbour) does not favour one.
    """
    cells = []
    n = len(placements)
    for r in range(repeat):
        for j, job in enumerate(job_names):
            k = (r + j) % n if n else 0
            for p in placements[k:] + placements[:k]:
                cells.append(Cell(r, job, p))
    return cells


@dataclass
class SweepConfig:
    specs: list[DriverSpec]
    jobs: list[FioJob]
    placements: tuple[str, ...] = PLACEMENTS
    repeat: int = 3
    workdir: Path = Path("storprof-work")
    docker_host: str | None = None
    image: str | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    fio_timeout: float = 3600
    storage_opts: list[str] = field(default_factory=list)   # e.g. overlay2.override_kernel_check=true
    layers: LayerPlan | None = None    # also time layer operations in each daemon (storprof layers)

    def storage_opts_for(self, driver: str) -> list[str]:
        """Only a driver's own options (`<driver>.key=value`): dockerd refuses another's."""
        return [o for o in self.storage_opts if o.split(".", 1)[0] == driver]

    def data_file_bytes(self) -> int:
        return max((parse_size(j.option("size") or "0") or 0) for j in self.jobs) if self.jobs else 0

    def backing_size_bytes(self) -> int:
        """Room for one fio file per placement plus images, layers and fs overhead."""
        layers = self.layers.bytes_needed() if self.layers else 0
        return max(4 << 30, len(self.placements) * self.data_file_bytes() * 2 + (2 << 30) + layers)


# Untimed, before the first measured run of each data file: write it whole with direct I/O.
# A file fio has just laid out reads far faster than one written since (seen here: 4 KiB direct
# random reads at ~185K IOPS right after layout, ~84K once it was overwritten), so without this
# the first repeat measured the layout, not the placement.
PRECONDITION_JOB = """; Precondition: write the data file once, sequentially, with direct I/O.
[global]
ioengine=libaio
direct=1
size={size}
[precondition]
rw=write
bs=1m
iodepth=4
"""


def precondition_job(size: str) -> FioJob:
    return parse_job(PRECONDITION_JOB.format(size=size), "precondition.fio")


def data_file_name(job: FioJob) -> str:
    """One data file per size and I/O mode: jobs of equal size share it, so it is laid out once.
    Buffered jobs get their own file: pages they leave in the page cache would otherwise make
    the next direct job on that file pay for invalidating them."""
    size = (job.option("size") or "default").lower()
    return f"storprof-{size}.dat" if job.direct else f"storprof-{size}-buffered.dat"


Progress = Callable[[str], None]


def _stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class DriverOutcome:
    spec: str
    status: str           # ok | skipped | failed
    reason: str = ""
    runs: int = 0
    seconds: float = 0.0


class Sweep:
    """Runs a SweepConfig into a ResultsStore; `run()` returns one outcome per driver spec."""

    def __init__(self, config: SweepConfig, store: ResultsStore, progress: Progress = _stderr_progress):
        self.config = config
        self.store = store
        self.progress = progress
        self._plan: RootfsPlan | None = None
        self.timings: dict[str, float] = {"daemon_start": 0.0, "image": 0.0, "containers": 0.0,
                                          "precondition": 0.0, "fio": 0.0, "teardown": 0.0}

    # ------------------------------------------------------------------ drivers
    def run(self) -> list[DriverOutcome]:
        cfg = self.config
        if cfg.docker_host:
            return [self._run_attached()]
        try:
            return self._run_all_ephemeral()
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                RUNTIME_ROOT.rmdir()   # only when no other sweep still uses it

    @property
    def run_dir(self) -> Path:
        """This sweep's scratch directory in the workdir (rendered job files); removed at the end."""
        return self.config.workdir / self.config.run_id

    def _run_all_ephemeral(self) -> list[DriverOutcome]:
        cfg = self.config
        outcomes = []
        facts = drivers.host_facts(host_fs_type(cfg.workdir))
        for i, spec in enumerate(cfg.specs):
            reason = drivers.probe(spec, facts=facts)
            if reason:
                self.progress(f"[{spec}] skipped: {reason}")
                outcomes.append(self._record_driver(DriverOutcome(str(spec), "skipped", reason), spec))
                continue
            start = time.monotonic()
            try:
                runs = self._run_ephemeral(i, spec)
                outcome = DriverOutcome(str(spec), "ok", "", runs)
            except (StorprofError, docker.errors.DockerException, requests.exceptions.RequestException) as e:
                message = _one_line(e)
                self.progress(f"[{spec}] failed: {message}")
                outcome = DriverOutcome(str(spec), "failed", message)
            outcome.seconds = time.monotonic() - start
            outcomes.append(self._record_driver(outcome, spec))
        return outcomes

    def _record_driver(self, outcome: DriverOutcome, spec: DriverSpec | None) -> DriverOutcome:
        self.store.append({"kind": "driver", "run_id": self.config.run_id, "driver_spec": outcome.spec,
                           "driver": spec.driver if spec else outcome.spec.split("@")[0],
                           "fs": spec.fs if spec else outcome.spec.split("@")[-1],
                           "status": outcome.status, "reason": outcome.reason,
                           "runs": outcome.runs, "seconds": round(outcome.seconds, 3)})
        return outcome

    def _bench_rootfs(self) -> RootfsPlan:
        if self._plan is None:
            self._plan = plan_rootfs()
        return self._plan

    def _labels(self) -> dict[str, str]:
        return {LABEL: self.config.run_id}

    @contextlib.contextmanager
    def ephemeral_session(self, index: int, spec: DriverSpec):
        """Backing filesystem, daemon, bench image and one target per placement, torn down on
        exit in reverse order (also on error or Ctrl-C). Yields (targets, context, daemon)."""
        cfg = self.config
        slug = f"{spec.driver}-{spec.fs}"
        with contextlib.ExitStack() as stack:
            stack.callback(shutil.rmtree, self.run_dir, ignore_errors=True)
            fs = backing.BackingFS(spec.fs, cfg.workdir, f"{cfg.run_id}-{slug}", cfg.backing_size_bytes())
            stack.callback(self._timed_teardown, fs.teardown)
            fs.setup()
            t0 = time.monotonic()
            daemon = EphemeralDaemon(str(spec), spec.driver, fs.path / "docker",
                                     RUNTIME_ROOT / f"{cfg.run_id}-{index}",
                                     self.store.dir / "daemons" / f"{slug}.log",
                                     storage_opts=cfg.storage_opts_for(spec.driver))
            stack.callback(self._timed_teardown, daemon.stop)
            daemon.start()
            self.timings["daemon_start"] += time.monotonic() - t0
            actual = daemon.storage_driver()
            if actual != spec.driver:
                raise StorprofError(f"[{spec}] dockerd runs {actual}, not {spec.driver}")
            context = self._context(spec, daemon, fs.describe())
            where = (f"loop {fs.loop_device} {'direct-io' if fs.direct_io else 'BUFFERED'}"
                     if fs.is_loop else "host filesystem")
            self.progress(f"[{spec}] dockerd {context['docker_version']} up on {fs.path} ({where})")
            targets = self._open_targets(stack, spec, daemon, host_dir=fs.path / "host",
                                         bind_dir=fs.path / "bind", context=context)
            yield targets, context, daemon

    def _run_ephemeral(self, index: int, spec: DriverSpec) -> int:
        with self.ephemeral_session(index, spec) as (targets, context, daemon):
            runs = self._run_cells(spec, targets, context)
            if self.config.layers:
                host = targets.get("host")
                self.time_layers(spec, daemon, context, getattr(host, "directory", None),
                                 Path(context["backing"]["path"]) / "docker")
            return runs

    def time_layers(self, spec: DriverSpec, daemon: Daemon, context: dict, host_dir: Path | None,
                    data_root: Path | None) -> None:
        """Layer create/delete timing in this daemon; records go to the same results store."""
        plan = self.config.layers
        plan.validate(spec.driver)
        common = {k: v for k, v in context.items() if k not in ("backing", "image")}
        timer = LayerTimer(str(spec), daemon.client, context["image"], self._labels(),
                           lambda rec: self.store.append({**common, **rec}), host_dir, data_root, self.progress)
        try:
            timer.run(plan)
        finally:
            timer.cleanup()

    def _run_attached(self) -> DriverOutcome:
        """Profile a running daemon's current driver; the baseline runs in a container on a
        bind-mounted directory under its data root, the same backing filesystem."""
        cfg = self.config
        start = time.monotonic()
        daemon = AttachedDaemon(cfg.docker_host)
        info = daemon.info()
        driver = info.get("Driver", "unknown")
        fs = dict(info.get("DriverStatus") or []).get("Backing Filesystem", "unknown")
        fs = {"extfs": "ext4"}.get(fs, fs)
        label = f"{driver}@{fs}"
        spec = DriverSpec(driver, fs)
        runs = 0
        try:
            with contextlib.ExitStack() as stack:
                stack.callback(daemon.stop)
                work = f"{daemon.data_root()}/storprof-{cfg.run_id}"
                context = self._context(spec, daemon, {"fs": fs, "path": work, "attached": True})
                targets = self._open_targets(stack, spec, daemon, host_dir=Path(work) / "host",
                                             bind_dir=Path(work) / "bind", attached_root=work, context=context)
                runs = self._run_cells(spec, targets, context)
                if cfg.layers:
                    self.time_layers(spec, daemon, context, None, None)
            outcome = DriverOutcome(label, "ok", "", runs)
        except (StorprofError, docker.errors.DockerException, requests.exceptions.RequestException) as e:
            message = _one_line(e)
            self.progress(f"[{label}] failed: {message}")
            outcome = DriverOutcome(label, "failed", message, runs)
        outcome.seconds = time.monotonic() - start
        return self._record_driver(outcome, spec)

    def _timed_teardown(self, fn) -> None:
        t0 = time.monotonic()
        try:
            fn()
        finally:
            self.timings["teardown"] += time.monotonic() - t0

    def _context(self, spec: DriverSpec, daemon: Daemon, backing_info: dict) -> dict:
        info = drivers.DRIVERS.get(spec.driver)
        return {"run_id": self.config.run_id, "driver_spec": str(spec), "driver": spec.driver,
                "fs": spec.fs, "docker_version": daemon.version(), "kernel": os.uname().release,
                "attached": not daemon.ephemeral, "backing": backing_info,
                "driver_honours_direct_io": info.honours_direct_io if info else None}

    def _open_targets(self, stack: contextlib.ExitStack, spec: DriverSpec, daemon: Daemon,
                      host_dir: Path, bind_dir: Path, attached_root: str | None = None,
                      context: dict | None = None) -> dict[str, Target]:
        cfg = self.config
        t0 = time.monotonic()
        image = BenchImage(daemon.client, self._labels(), cfg.image)
        stack.callback(self._timed_teardown, image.remove)
        if cfg.image:
            ref = image.ensure()
        else:
            ref = image.ensure(self._bench_rootfs(), cfg.workdir if cfg.workdir.is_dir() else None)
        self.timings["image"] += time.monotonic() - t0
        if context is not None:
            context["image"] = ref
        t0 = time.monotonic()
        if attached_root:
            stack.callback(self._timed_teardown, lambda: _remove_attached_dirs(daemon, ref, self._labels(),
                                                                               attached_root, cfg.run_id))
        targets: dict[str, Target] = {}
        base = f"storprof-{cfg.run_id}-{spec.driver}-{spec.fs}"
        for placement in cfg.placements:
            if placement == "host" and not attached_root:
                targets["host"] = HostTarget(host_dir, self.run_dir / "jobs")
                continue
            bind = str(host_dir if placement == "host" else bind_dir) if placement in ("host", "bind") else None
            if bind and not attached_root:
                Path(bind).mkdir(parents=True, exist_ok=True)
            target = ContainerTarget(daemon.client, ref, placement, self._labels(),
                                     name=f"{base}-{placement}", bind_source=bind)
            stack.callback(self._timed_teardown, target.close)
            targets[placement] = target
        self.timings["containers"] += time.monotonic() - t0
        return targets

    # ------------------------------------------------------------------ cells
    def precondition(self, spec: DriverSpec, targets: dict[str, Target], jobs: list[FioJob]) -> None:
        """Bring every placement's data file to the same state before anything is measured."""
        files = {data_file_name(j): j.option("size") for j in jobs if j.option("size")}
        for filename, size in files.items():
            job = precondition_job(size)
            for placement, target in targets.items():
                text = job.render(directory=target.fio_dir, filename=filename)
                fio_run = target.run_fio(text, "precondition", self.config.fio_timeout)
                self.timings["precondition"] += fio_run.wall_seconds
                try:
                    parse_fio_output(fio_run.stdout, fio_run.stderr)
                except FioError as e:
                    raise StorprofError(f"[{spec}] preparing the {size} data file on {placement} failed: {e}") from None

    def _run_cells(self, spec: DriverSpec, targets: dict[str, Target], context: dict) -> int:
        cfg = self.config
        jobs = {j.name: j for j in cfg.jobs}
        order = plan_order(list(jobs), tuple(targets), cfg.repeat)
        self.precondition(spec, targets, list(jobs.values()))
        for n, cell in enumerate(order, 1):
            summary = self.run_cell(spec, targets[cell.placement], jobs[cell.job], cell.repeat, context)
            self.progress(f"[{spec}] {n}/{len(order)} {cell.job} {cell.placement} r{cell.repeat + 1}: {summary}")
        return len(order)


    def run_cell(self, spec: DriverSpec, target: Target, job: FioJob, repeat: int, context: dict) -> str:
        """Run one job once on one target, append its record (and keep fio's JSON); returns a summary."""
        text = job.render(directory=target.fio_dir, filename=data_file_name(job))
        fio_run = target.run_fio(text, job.name, self.config.fio_timeout)
        self.timings["fio"] += fio_run.wall_seconds
        raw = self.store.save_raw(f"{spec.driver}-{spec.fs}/{target.placement}/{job.name}-r{repeat}.json",
                                  fio_run.stdout if fio_run.stdout.strip() else fio_run.stderr)
        record = {"kind": "fio", **{k: v for k, v in context.items() if k not in ("backing", "image")},
                  "placement": target.placement, "placement_detail": target.description,
                  "job": job.name, "repeat": repeat, "direct": job.direct,
                  "primary_metric": job.primary_metric, "raw": raw,
                  "wall_seconds": round(fio_run.wall_seconds, 3),
                  "loop_direct_io": context["backing"].get("direct_io"),
                  "params": {"size": job.option("size"), "runtime": job.option("runtime"),
                             "ramp_time": job.option("ramp_time"), "cpus_allowed": job.option("cpus_allowed"),
                             "source": str(job.source)}}
        try:
            result = parse_fio_output(fio_run.stdout, fio_run.stderr)
            record.update(status="ok", fio_version=result.fio_version, metrics=result.metrics())
            summary = _summary(job, result.metrics())
        except FioError as e:
            record.update(status="failed", error=str(e), metrics={})
            summary = f"FAILED: {e}"
        self.store.append(record)
        return summary


def _one_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _summary(job: FioJob, metrics: dict) -> str:
    if job.primary_metric == "bw":
        return f"{(metrics.get('total_bw_bytes') or 0) / 2**20:.1f} MiB/s"
    return f"{(metrics.get('total_iops') or 0):,.0f} IOPS"


def _remove_attached_dirs(daemon: Daemon, image_ref: str, labels: dict, root: str, run_id: str) -> None:
    """Attach mode: the baseline's directories under the data root are removed from a
    container, since the daemon's host may not be this machine."""
    parent, name = root.rsplit("/", 1)
    try:
        daemon.client.containers.run(image_ref, ["/bin/rm", "-rf", f"/parent/{name}"], remove=True,
                                     labels=labels, network_mode="none",
                                     volumes={parent: {"bind": "/parent", "mode": "rw"}},
                                     name=f"storprof-{run_id}-cleanup")
    except Exception:
        pass

