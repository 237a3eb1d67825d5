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

from . import backing, containers, drivers
from .daemon import RUNTIME_ROOT, AttachedDaemon, Daemon, EphemeralDaemon
from .drivers import DriverSpec
from .errors import FioError, StorprofError
from .fiojob import FioJob, precondition_job
from .fioresult import parse_fio_output
from .mounts import host_fs_type
from .layers import LayerPlan, LayerTimer
from .copyup import CopyUpPlan, CopyUpProbe
from .copyup import job_names as copyup_rows
from .deepstack import DeepStackPlan, DeepStackProbe
from .deepstack import job_names as stack_rows
from .probe import ProbeHooks
from .image import BenchImage, RootfsPlan, plan_rootfs
from .lowerlayer import image_with_files, remove_image
from .placements import LOWER_DIR, PLACEMENTS, ContainerTarget, HostTarget, Target
from .results import ResultsStore, mem_total_bytes
from .state import RunState, dead_runs



@dataclass(frozen=True)
class Cell:
    repeat: int
    job: str
    placement: str


def plan_order(job_names: list[str], placements: tuple[str, ...], repeat: int,
               only: dict[str, tuple[str, ...] | None] | None = None) -> list[Cell]:
    """Every (repeat, job, placement), repeats outermost, placements rotated per (repeat, job).

    Consecutive runs of one job move across placements, and each placement is first equally
    often, so drift of the machine (cache warm-up, a noisy neighbour) does not favour one.
    `only` narrows a job to some placements (a job file's placements directive).
    """
    cells = []
    only = only or {}
    for r in range(repeat):
        for j, job in enumerate(job_names):
            mine = tuple(p for p in placements if only.get(job) is None or p in only[job])
            n = len(mine)
            k = (r + j) % n if n else 0
            for p in mine[k:] + mine[:k]:
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
    done: frozenset = frozenset()      # measurements a resumed results directory already has (finished_keys)
    copyup: CopyUpPlan | None = None   # union probes: the first write into a lower-layer file
    deep_stack: DeepStackPlan | None = None   # union probes: lookups at the bottom of K layers

    def storage_opts_for(self, driver: str) -> list[str]:
        """Only a driver's own options (`<driver>.key=value`): dockerd refuses another's."""
        return [o for o in self.storage_opts if o.split(".", 1)[0] == driver]

    def backing_size_bytes(self) -> int:
        """Room for every distinct data file on every placement, the lower-layer image (twice:
        vfs copies it into the container), the metadata jobs' files (a fresh directory per repeat,
        kept until the placement goes), the probes' images, layers and fs overhead."""
        files = {data_file_name(j): j.bytes_needed() for j in self.jobs if not j.own_files}
        lower = 2 * sum(b for name, b in files.items() if name.endswith("-lower.dat"))
        own = self.repeat * sum(j.bytes_needed() for j in self.jobs if j.own_files)
        extra = sum(p.bytes_needed() for p in (self.layers, self.copyup, self.deep_stack) if p)
        return max(4 << 30, len(self.placements) * (sum(files.values()) + own) + lower + (2 << 30) + extra)


def data_file_name(job: FioJob) -> str:
    """One data file per size and I/O mode: jobs of equal size share it, so it is laid out once.
    Buffered jobs get their own file: pages they leave in the page cache would otherwise make
    the next direct job on that file pay for invalidating them. Lower-layer jobs get their own
    too, only ever read, like the image's copy: on btrfs the shared file, rewritten 4 KiB at a
    time by randwrite-4k (copy-on-write), read sequentially at a third of the speed of the
    image's untouched copy (650 against 2300 MiB/s here)."""
    size = (job.option("size") or "default").lower()
    if job.lower_layer:
        return f"storprof-{size}-lower.dat"
    return f"storprof-{size}.dat" if job.direct else f"storprof-{size}-buffered.dat"


Progress = Callable[[str], None]
CellDone = Callable[[str, str, str, int, str], None]     # spec, placement, job, repeat, summary


def finished_keys(records: list[dict]) -> frozenset:
    """What a results directory already holds, in the keys Sweep skips on --resume: a fio cell
    that ran ok, a probe sample (by the last row it writes), and a driver's layer timing."""
    keys = set()
    for r in records:
        kind, spec = r.get("kind"), r.get("driver_spec")
        if kind == "fio" and r.get("status") == "ok":
            keys.add(("fio", spec, r.get("job"), r.get("placement"), r.get("repeat")))
        elif kind == "probe":
            keys.add(("probe", spec, r.get("job"), r.get("placement"), r.get("repeat")))
        elif kind == "layer":
            keys.add(("layers", spec))
    return frozenset(keys)


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

    def __init__(self, config: SweepConfig, store: ResultsStore, progress: Progress = _stderr_progress,
                 cell_done: CellDone | None = None, add_total: Callable[[int], None] | None = None):
        self.config = config
        self.store = store
        self.progress = progress
        self._cell_done = cell_done or (lambda spec, placement, job, repeat, summary:
                                        progress(f"[{spec}] {job} {placement} r{repeat + 1}: {summary}"))
        self.add_total = add_total or (lambda units: None)
        self._left: dict[str, int] = {}      # units (cells, probe samples, layer timing) still to do per spec
        self.state: RunState | None = None   # the ownership record (state.py), while a run is on
        self._plan: RootfsPlan | None = None
        self.timings: dict[str, float] = {"daemon_start": 0.0, "image": 0.0, "containers": 0.0,
                                          "precondition": 0.0, "fio": 0.0, "teardown": 0.0}

    # ------------------------------------------------------------------ drivers
    def run(self) -> list[DriverOutcome]:
        cfg = self.config
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        killed = dead_runs(cfg.workdir)
        if killed:
            self.progress(f"{cfg.workdir} holds leftovers of {len(killed)} killed run(s) ({', '.join(killed)}); "
                          f"'storprof clean --workdir {cfg.workdir}' removes them")
        self.state = RunState(cfg.workdir, cfg.run_id, sys.argv)
        self.state.record("dir", path=str(self.run_dir))
        try:
            if cfg.docker_host:
                return [self._run_attached()]
            return self._run_all_ephemeral()
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                RUNTIME_ROOT.rmdir()   # only when no other sweep still uses it
            self._finish_state()

    def _finish_state(self) -> None:
        left = self.state.finish()
        self.state = None
        if left:
            self.progress(f"left behind: {'; '.join(left)}; 'storprof clean --workdir {self.config.workdir}' "
                          "removes it")

    @property
    def run_dir(self) -> Path:
        """This sweep's scratch directory in the workdir (rendered job files); removed at the end."""
        return self.config.workdir / self.config.run_id

    def _run_all_ephemeral(self) -> list[DriverOutcome]:
        cfg = self.config
        outcomes = []
        facts = drivers.host_facts(host_fs_type(cfg.workdir))
        for spec in cfg.specs:
            self._left[str(spec)] = self.units(str(spec), with_host=True)
        self.add_total(sum(self._left.values()))
        for i, spec in enumerate(cfg.specs):
            reason = drivers.probe(spec, facts=facts)
            if reason:
                self.progress(f"[{spec}] skipped: {reason}")
                self._forget(str(spec))
                outcomes.append(self._record_driver(DriverOutcome(str(spec), "skipped", reason), spec))
                continue
            if cfg.done and not self._left[str(spec)]:
                self.progress(f"[{spec}] already measured in {self.store.dir}; nothing left to run")
                outcomes.append(DriverOutcome(str(spec), "ok", "already measured"))
                continue
            start = time.monotonic()
            try:
                runs = self._run_ephemeral(i, spec)
                outcome = DriverOutcome(str(spec), "ok", "", runs)
            except (StorprofError, docker.errors.DockerException, requests.exceptions.RequestException) as e:
                message = _one_line(e)
                self.progress(f"[{spec}] failed: {message}")
                outcome = DriverOutcome(str(spec), "failed", message)
            self._forget(str(spec))
            outcome.seconds = time.monotonic() - start
            outcomes.append(self._record_driver(outcome, spec))
        return outcomes

    # ------------------------------------------------------------------ progress and resume
    def _done(self, *key) -> bool:
        return key in self.config.done

    def units(self, spec: str, with_host: bool) -> int:
        """Cells, probe samples and layer timing this spec still needs (for the progress bar)."""
        cfg = self.config
        jobs = {j.name: j for j in cfg.jobs}
        order = plan_order(list(jobs), cfg.placements, cfg.repeat, {n: j.placements for n, j in jobs.items()})
        n = sum(not self._done("fio", spec, c.job, c.placement, c.repeat) for c in order)
        sides = ("host", "union") if with_host and "host" in cfg.placements else ("union",)
        if cfg.copyup:
            n += sum(not self._done("probe", spec, copyup_rows(s)["second_done"], p, r)
                     for s in cfg.copyup.sizes_mib for r in range(cfg.repeat) for p in sides)
        if cfg.deep_stack:
            n += sum(not self._done("probe", spec, stack_rows(k, cfg.deep_stack.target_mib)["read"], p, r)
                     for k in cfg.deep_stack.depths for r in range(cfg.repeat) for p in sides)
        if cfg.layers and not self._done("layers", spec):
            n += 1
        return n

    def cell_done(self, spec: str, placement: str, job: str, repeat: int, summary: str) -> None:
        self._left[spec] = max(0, self._left.get(spec, 1) - 1)
        self._cell_done(spec, placement, job, repeat, summary)

    def _forget(self, spec: str) -> None:
        """A driver that is over (skipped, failed or done): drop what it did not run from the total."""
        self.add_total(-self._left.pop(spec, 0))

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
        return containers.labels_for(self.config.run_id)

    @contextlib.contextmanager
    def ephemeral_session(self, index: int, spec: DriverSpec):
        """Backing filesystem, daemon, bench image and one target per placement, torn down on
        exit in reverse order (also on error or Ctrl-C). Yields (targets, context, daemon)."""
        cfg = self.config
        slug = f"{spec.driver}-{spec.fs}"
        with contextlib.ExitStack() as stack:
            if self.state is None:         # a session used on its own (not from run()) records too
                self.state = RunState(cfg.workdir, cfg.run_id, sys.argv)
                stack.callback(self._finish_state)
            stack.callback(shutil.rmtree, self.run_dir, ignore_errors=True)
            fs = backing.BackingFS(spec.fs, cfg.workdir, f"{cfg.run_id}-{slug}", cfg.backing_size_bytes())
            self.state.record("backing", **fs.record())
            stack.callback(self._timed_teardown, fs.teardown)
            fs.setup()
            t0 = time.monotonic()
            daemon = EphemeralDaemon(str(spec), spec.driver, fs.path / "docker",
                                     RUNTIME_ROOT / f"{cfg.run_id}-{index}",
                                     self.store.dir / "daemons" / f"{slug}.log",
                                     storage_opts=cfg.storage_opts_for(spec.driver))
            self.state.record("daemon", **daemon.record())
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
            host = targets.get("host")
            runs += self.run_union_probes(spec, daemon, context, host if isinstance(host, HostTarget) else None)
            if self.config.layers and not self._done("layers", str(spec)):
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
        self.cell_done(str(spec), "-", "layer timing", 0, "done")

    def run_union_probes(self, spec: DriverSpec, daemon: Daemon, context: dict, host: HostTarget | None) -> int:
        """Copy-up and deep-stack samples in this daemon; returns the number of records."""
        cfg = self.config
        if not (cfg.copyup or cfg.deep_stack):
            return 0
        common = {k: v for k, v in context.items() if k not in ("backing", "image")}
        count = 0

        def emit(placement: str, job: str, repeat: int, seconds: float, params: dict, workload: str) -> None:
            nonlocal count
            count += 1
            self.store.append({"kind": "probe", **common, "workload": workload, "placement": placement,
                               "job": job, "repeat": repeat, "primary_metric": "time", "status": "ok",
                               "metrics": {"seconds": seconds}, "params": params,
                               "loop_direct_io": context["backing"].get("direct_io")})

        prefix = f"storprof-{cfg.run_id}-{spec.driver}-{spec.fs}"
        t0 = time.monotonic()
        def hooks(workload: str) -> ProbeHooks:
            return ProbeHooks(str(spec), lambda *a: emit(*a, workload=workload), self.progress,
                              done=lambda p, what, r, summary: self.cell_done(str(spec), p, what, r, summary),
                              skip=lambda p, job, r: self._done("probe", str(spec), job, p, r))

        probes = []
        if cfg.copyup:
            probes.append((cfg.copyup, CopyUpProbe(hooks("copyup"), daemon.client, context["image"], self._labels(),
                                                   host, prefix)))
        if cfg.deep_stack:
            probes.append((cfg.deep_stack, DeepStackProbe(hooks("deep-stack"), daemon.client, self._labels(),
                                                          host.directory if host else None, prefix,
                                                          f"storprof-stack:{cfg.run_id}", self._scratch())))
        for plan, probe in probes:
            try:
                probe.run(plan, cfg.repeat)
            finally:
                probe.cleanup()
        self.timings["probes"] = self.timings.get("probes", 0.0) + time.monotonic() - t0
        return count

    def _scratch(self) -> Path | None:
        return self.config.workdir if self.config.workdir.is_dir() else None

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
        self._left[label] = self.units(label, with_host=False)
        self.add_total(self._left[label])
        try:
            with contextlib.ExitStack() as stack:
                stack.callback(daemon.stop)
                work = f"{daemon.data_root()}/storprof-{cfg.run_id}"
                self.state.record("attached", docker_host=cfg.docker_host, work=work)
                context = self._context(spec, daemon, {"fs": fs, "path": work, "attached": True})
                targets = self._open_targets(stack, spec, daemon, host_dir=Path(work) / "host",
                                             bind_dir=Path(work) / "bind", attached_root=work, context=context)
                runs = self._run_cells(spec, targets, context)
                runs += self.run_union_probes(spec, daemon, context, None)
                if cfg.layers and not self._done("layers", label):
                    self.time_layers(spec, daemon, context, None, None)
            outcome = DriverOutcome(label, "ok", "", runs)
        except (StorprofError, docker.errors.DockerException, requests.exceptions.RequestException) as e:
            message = _one_line(e)
            self.progress(f"[{label}] failed: {message}")
            outcome = DriverOutcome(label, "failed", message, runs)
        self._forget(label)
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
                "attached": not daemon.ephemeral, "backing": backing_info, "mem_total_bytes": mem_total_bytes(),
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
        lower_files = {data_file_name(j): j.option("size") for j in cfg.jobs if j.lower_layer}
        union_image = ref
        if lower_files and "union" in cfg.placements:
            t1 = time.monotonic()
            union_image = image_with_files(daemon.client, ref, lower_files, self._labels(), name=f"{base}-lower-build",
                                           timeout=cfg.fio_timeout)
            stack.callback(self._timed_teardown, lambda: remove_image(daemon.client, union_image))
            self.timings["image"] += time.monotonic() - t1
            self.progress(f"[{spec}] lower-layer image: {', '.join(sorted(lower_files))} in a layer under the "
                          "union container")
        for placement in cfg.placements:
            if placement == "host" and not attached_root:
                targets["host"] = HostTarget(host_dir, self.run_dir / "jobs")
                continue
            bind = str(host_dir if placement == "host" else bind_dir) if placement in ("host", "bind") else None
            if bind and not attached_root:
                Path(bind).mkdir(parents=True, exist_ok=True)
            target = ContainerTarget(daemon.client, union_image if placement == "union" else ref, placement,
                                     self._labels(), name=f"{base}-{placement}", bind_source=bind,
                                     lower_files=placement == "union" and bool(lower_files))
            stack.callback(self._timed_teardown, target.close)
            targets[placement] = target
            if placement == "union" and lower_files:
                _drop_lower_files_from_cache(target, lower_files)
        self.timings["containers"] += time.monotonic() - t0
        return targets

    # ------------------------------------------------------------------ cells
    def precondition(self, spec: DriverSpec, targets: dict[str, Target], jobs: list[FioJob]) -> None:
        """Bring every placement's data file to the same state before anything is measured."""
        for placement, target in targets.items():
            # A lower-layer job on union reads the image's file, written when the image was made.
            files = {data_file_name(j): j.option("size") for j in jobs
                     if j.option("size") and not j.own_files and not (j.lower_layer and target.lower_dir != target.fio_dir)}
            for filename, size in sorted(files.items()):
                job = precondition_job(size)
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
        order = plan_order(list(jobs), tuple(targets), cfg.repeat, {n: j.placements for n, j in jobs.items()})
        order = [c for c in order if not self._done("fio", str(spec), c.job, c.placement, c.repeat)]
        if not order:
            return 0
        self.precondition(spec, targets, list(jobs.values()))
        for cell in order:
            summary = self.run_cell(spec, targets[cell.placement], jobs[cell.job], cell.repeat, context)
            self.cell_done(str(spec), cell.placement, cell.job, cell.repeat, summary)
        return len(order)


    def run_cell(self, spec: DriverSpec, target: Target, job: FioJob, repeat: int, context: dict) -> str:
        """Run one job once on one target, append its record (and keep fio's JSON); returns a summary."""
        if job.own_files:
            # Metadata jobs: a fresh directory per run, kept until the placement goes. Deleting it
            # between runs slowed the next run's creates here (ext4 scans past recently deleted
            # inodes, perf: recently_deleted in __ext4_new_inode; 1.3k against 12k creates/s), by
            # an amount set by the placement's block group, not by its driver.
            text = job.render(directory=target.fresh_dir(f"{job.name}-r{repeat}"))
        elif job.lower_layer:
            text = job.render(directory=target.lower_dir, filename=data_file_name(job))
        else:
            text = job.render(directory=target.fio_dir, filename=data_file_name(job))
        fio_run = target.run_fio(text, job.name, job.time_limit(self.config.fio_timeout))
        self.timings["fio"] += fio_run.wall_seconds
        copied_up = None
        if job.lower_layer and target.lower_dir != target.fio_dir:
            lower_path = f"{target.lower_dir}/{data_file_name(job)}"
            copied_up = lower_path in (target.modified_paths() or set())
        raw = self.store.save_raw(f"{spec.driver}-{spec.fs}/{target.placement}/{job.name}-r{repeat}.json",
                                  fio_run.stdout if fio_run.stdout.strip() else fio_run.stderr)
        record = {"kind": "fio", **{k: v for k, v in context.items() if k not in ("backing", "image")},
                  "placement": target.placement, "placement_detail": target.description,
                  "job": job.name, "repeat": repeat, "direct": job.direct,
                  "lower_layer": job.lower_layer, "own_files": job.own_files,
                  "primary_metric": job.primary_metric, "raw": raw,
                  "wall_seconds": round(fio_run.wall_seconds, 3),
                  "loop_direct_io": context["backing"].get("direct_io"),
                  "params": {"size": job.option("size"), "runtime": job.option("runtime"),
                             "rw": job.option("rw") or job.option("readwrite"),
                             "fsync": job.option("fsync"), "fdatasync": job.option("fdatasync"),
                             "sync": job.option("sync"), "nrfiles": job.option("nrfiles"),
                             "ramp_time": job.option("ramp_time"), "cpus_allowed": job.option("cpus_allowed"),
                             "source": str(job.source)}}
        try:
            result = parse_fio_output(fio_run.stdout, fio_run.stderr)
            record.update(status="ok", fio_version=result.fio_version, metrics=result.metrics(),
                          fio_messages=list(result.warnings))
            summary = _summary(job, result.metrics())
            if copied_up:
                record.update(status="failed", error="the read copied the lower-layer file up to the top layer")
                summary = f"FAILED: {record['error']}"
        except FioError as e:
            record.update(status="failed", error=str(e), metrics={})
            summary = f"FAILED: {e}"
        self.store.append(record)
        return summary


def _drop_lower_files_from_cache(target: ContainerTarget, files: dict[str, str]) -> None:
    """Committing the lower-layer image wrote its files through the page cache, unlike the other
    placements' data files (written with direct I/O): drop their pages so no cache favours union.
    Through /proc/<pid>/root, which needs the daemon on this machine; elsewhere it is skipped."""
    from .filetiming import container_root, drop_cached_pages
    try:
        root = container_root(target.container)
        for name in files:
            drop_cached_pages(root / LOWER_DIR.lstrip("/") / name)
    except OSError:
        pass


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
        containers.run(daemon.client, image_ref, command=["/bin/rm", "-rf", f"/parent/{name}"], remove=True,
                       labels=labels, volumes={parent: {"bind": "/parent", "mode": "rw"}},
                       name=f"storprof-{run_id}-cleanup")
    except Exception:
        pass

