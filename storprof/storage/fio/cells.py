"""The fio workload: every (job, placement, repeat) cell, interleaved, on the session's targets.

Each placement of a spec sits on the same backing filesystem, so the host placement is the
baseline the others are divided by; the cells of one repeat of one job run back to back over the
placements (paired), with the first placement rotated from repeat to repeat so that drift of the
machine favours none. One container serves all the jobs of its placement: a container per run
would measure container start-up, not I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from storprof.errors import FioError, StorprofError
from storprof.harness.timeaccount import FIO_MEASURING, FIO_RAMP, FIO_STARTUP, SETTLE
from storprof.harness.workload import Done, Sink, Unit
from storprof.host import writeback
from storprof.results.records import FioRecord
from storprof.storage.fio.fiojob import FioJob
from storprof.storage.fio.job import precondition_job
from storprof.storage.fio.options import MAX_FILES, time_seconds
from storprof.storage.fio.placements import AA, LOWER_DIR, ContainerTarget, FioRun, HostTarget, Target
from storprof.storage.fio.result import FioResult, parse_fio_output
from storprof.storage.probes.filetiming import container_root, drop_cached_pages
from storprof.storage.probes.lowerlayer import image_with_files, remove_image

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

WORKLOAD = "fio"
# Seconds of work a metadata job's run should measure, and the engines whose files are laid out
# in a run of their own first.
METADATA_SECONDS = 1.5
CALIBRATION_RUNS = 2         # metadata calibration passes; the quicker sets the rate
LAYOUT_FIRST = ("filestat", "filedelete", "dirstat", "dirdelete")


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
            mine = tuple(p for p in placements if only.get(job) is None or p in (only[job] or ()))
            n = len(mine)
            k = (r + j) % n if n else 0
            for p in mine[k:] + mine[:k]:
                cells.append(Cell(r, job, p))
    return cells


# The state a job's data file is in when it runs (recorded with each run as params.file_state).
PRISTINE = "pristine"   # written once, sequentially, with direct I/O; never written since
OWN = "own"             # written once like that, and since then only by this job's own runs


def data_file_name(job: FioJob) -> str:
    """The file a job runs on, named for the state it expects.

    A job that writes gets a file of its own (OWN): no other job's writes have fragmented it
    (btrfs copies on write) or left it in another layout, and a time-based job rewrites it at its
    own pace only. A job that only reads shares, per size and I/O mode, a file no job ever writes
    (PRISTINE), like the image's copy a lower-layer job reads on union (docs/findings.md, 'btrfs
    lower-layer read'). Buffered jobs do not share with direct ones: pages they leave in the cache
    would make the next direct job pay for invalidating them."""
    size = (job.option("size") or "default").lower()
    mode = "direct" if job.direct else "buffered"
    if job.writes:
        return f"storprof-{job.name}-{size}-{mode}.dat"
    return f"storprof-read-{size}-{mode}.dat"


def file_state(job: FioJob) -> str:
    return OWN if job.writes else PRISTINE


class FioCells:
    """fio jobs on the placements of each session."""

    name = WORKLOAD

    def __init__(self, jobs: list[FioJob], placements: tuple[str, ...], repeat: int, fio_timeout: float,
                 aa_jobs: tuple[str, ...] | None = None):
        self.jobs = {j.name: j for j in jobs}
        self.placements = placements
        self.aa_jobs = aa_jobs             # the jobs the A/A control runs for (None: every job)
        self.repeat = repeat
        self.fio_timeout = fio_timeout
        self.targets: dict[str, Target] = {}
        self._scaled: dict[str, FioJob] = {}    # metadata jobs with the file count of this session

    def job_placements(self, job: FioJob) -> tuple[str, ...]:
        return tuple(p for p in self.placements if (job.placements is None or p in job.placements)
                     and (p != AA or self.aa_jobs is None or job.name in self.aa_jobs))

    def _only(self) -> dict[str, tuple[str, ...] | None]:
        return {n: (j.placements if self.aa_jobs is None or AA not in self.placements else self.job_placements(j))
                for n, j in self.jobs.items()}

    def done_keys(self, results: ResultSet) -> set[tuple]:
        """A repeat of a job counts as done only when every placement of it ran ok in one run: its
        ratios pair runs made back to back, so a resumed sweep reruns a group it left half done
        rather than pair its new runs with the old session's host run."""
        ran: dict[tuple, set[str]] = {}
        for r in results.of(FioRecord):
            if r.status == "ok":
                ran.setdefault((r.context.run_id, r.context.driver_spec, r.job, r.repeat), set()).add(r.placement)
        return {(WORKLOAD, spec, job, repeat) for (_, spec, job, repeat), placements in ran.items()
                if job in self.jobs and set(self.job_placements(self.jobs[job])) <= placements}

    def units(self, spec: str, done: Done) -> list[Unit]:
        order = plan_order(list(self.jobs), self.placements, self.repeat, self._only())
        units = [Unit(WORKLOAD, c.job, c.placement, c.repeat, (WORKLOAD, spec, c.job, c.repeat)) for c in order]
        return [u for u in units if u.key not in done]

    def group_of(self, record) -> str | None:
        return record.job if isinstance(record, FioRecord) and record.job in self.jobs else None

    def extra_round(self, spec: str, group: str, repeat: int) -> list[Unit]:
        job = self.jobs[group]
        mine = self.job_placements(job)
        k = (repeat + list(self.jobs).index(group)) % len(mine)
        return [Unit(WORKLOAD, group, p, repeat, (WORKLOAD, spec, group, repeat)) for p in mine[k:] + mine[:k]]

    def lower_files(self) -> dict[str, str]:
        """The data files lower-layer jobs read: file name -> fio size."""
        return {data_file_name(j): j.option("size") or "" for j in self.jobs.values() if j.lower_layer}

    def prepare(self, session: Session, sink: Sink) -> None:
        """A target per placement (union from an image whose lower layer holds the lower-layer
        jobs' files), then every data file written once, so no cell measures a fresh layout."""
        lower = self.lower_files()
        union_image = None
        if lower and "union" in self.placements:
            with session.times.phase("image"):
                union_image = image_with_files(session.daemon.client, session.context.image or "", lower,
                                               session.labels, name=f"{session.name_prefix}-lower-build",
                                               timeout=self.fio_timeout)
            session.callback(remove_image, session.daemon.client, union_image)
            sink.message(f"[{session.label}] lower-layer image: {', '.join(sorted(lower))} in a layer under the "
                         "union container")
        self.targets = {}
        for placement in self.placements:
            is_union = placement == "union"
            target = session.target(placement, image=union_image if is_union else None,
                                    lower_files=is_union and bool(lower))
            self.targets[placement] = target
            if is_union and lower and isinstance(target, ContainerTarget):
                _drop_lower_files_from_cache(target, lower)
        with session.times.phase("precondition"):
            self.precondition(session.label)
            self._scale_metadata_jobs(session.label)

    def _scale_metadata_jobs(self, spec: str) -> None:
        """Give each metadata job enough files that a run measures about METADATA_SECONDS of work
        on the first placement (the host, where there is one): fio times these jobs with a
        millisecond clock, so a pass of 2,000 files (40 ms here) had only two significant digits.
        The same count then serves every placement of the session. The quicker of two calibration
        runs sets the rate: on a busy disk one pass of the same files took 138 ms and another 3.3 s
        (a journal commit waiting on writeback), and a count scaled from the stalled pass left the
        runs without stalls at a tenth of a second."""
        self._scaled = {}
        target = next(iter(self.targets.values()), None)
        for job in self.jobs.values():
            if not job.own_files or target is None:
                continue
            files = int(job.option("nrfiles") or 1)
            runtimes = []
            for attempt in range(CALIBRATION_RUNS):
                fio_run = self._metadata_run(job, target, f"{job.name}-calibrate{attempt}")
                try:
                    runtimes.append(parse_fio_output(fio_run.stdout, fio_run.stderr).runtime_ms)
                except FioError as e:
                    raise StorprofError(f"[{spec}] calibrating {job.name} failed: {e}") from None
            runtime_ms = min(runtimes)
            scaled = math.ceil(files * METADATA_SECONDS * 1000 / max(runtime_ms, 1))
            self._scaled[job.name] = job.with_files(min(MAX_FILES // job.numjobs(job.job_indexes()[0]),
                                                        max(files, scaled)))

    def _metadata_run(self, job: FioJob, target: Target, directory: str) -> FioRun:
        """One run of a metadata job in a fresh directory; a job that stats or deletes files has
        them laid out first, in a run of its own (untimed), as fio's filestat and filedelete would
        otherwise do inside the timed run's setup."""
        path = target.fresh_dir(directory)
        if (job.option("ioengine") or "") in LAYOUT_FIRST:
            layout = job.with_files(int(job.option("nrfiles") or 1), create_only=True)
            done = target.run_fio(layout.render(directory=path), f"{job.name}-layout", self.fio_timeout,
                                  limits=layout.limits())
            parse_fio_output(done.stdout, done.stderr)
        return target.run_fio(job.render(directory=path), job.name, job.time_limit(self.fio_timeout),
                              limits=job.limits())

    def precondition(self, spec: str) -> None:
        """Bring every placement's data file to the same state before anything is measured.
        Untimed: a file fio has just laid out reads far faster than one written since."""
        done_dirs: set[str] = set()
        for placement, target in self.targets.items():
            if target.fio_dir in done_dirs and isinstance(target, HostTarget):
                continue                  # the A/A control reads and writes the host's own files
            done_dirs.add(target.fio_dir)
            # A lower-layer job on union reads the image's file, written when the image was made.
            in_image = target.lower_dir != target.fio_dir
            files = {data_file_name(j): j.option("size") for j in self.jobs.values()
                     if j.option("size") and not j.own_files and not (j.lower_layer and in_image)}
            for filename, size in sorted(files.items()):
                pre = precondition_job(size or "")
                fio_run = target.run_fio(pre.render(directory=target.fio_dir, filename=filename), "precondition",
                                         self.fio_timeout, limits=pre.limits())
                try:
                    parse_fio_output(fio_run.stdout, fio_run.stderr)
                except FioError as e:
                    raise StorprofError(f"[{spec}] preparing the {size} data file on {placement} failed: {e}") from None

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        """Run one job once on one target, emit its record (and keep fio's JSON); returns a summary."""
        job, target = self._scaled.get(unit.group) or self.jobs[unit.group], self.targets[unit.placement]
        with session.times.phase(SETTLE):
            settle_disk(session)
        with session.times.phase(FIO_STARTUP):       # less what fio measured, below (_account)
            if job.own_files:
                # Metadata jobs: a fresh directory per run, kept until the placement goes (see
                # docs/findings.md, 'ext4 and recently deleted inodes').
                fio_run = self._metadata_run(job, target, f"{job.name}-r{unit.repeat}")
            else:
                directory = target.lower_dir if job.lower_layer else target.fio_dir
                text = job.render(directory=directory, filename=data_file_name(job))
                fio_run = target.run_fio(text, job.name, job.time_limit(self.fio_timeout), limits=job.limits())
        copied_up = None
        if job.lower_layer and target.lower_dir != target.fio_dir:
            copied_up = f"{target.lower_dir}/{data_file_name(job)}" in (target.modified_paths() or set())
        where = f"{session.spec.slug}/{target.placement}/{job.name}-r{unit.repeat}.json"
        raw = sink.save_raw(where, fio_run.stdout if fio_run.stdout.strip() else fio_run.stderr)
        record = FioRecord(context=session.context, placement=target.placement, job=job.name, repeat=unit.repeat,
                           status="failed", primary_metric=job.primary_metric, placement_detail=target.description,
                           direct=job.direct, lower_layer=job.lower_layer, own_files=job.own_files, raw=raw,
                           wall_seconds=round(fio_run.wall_seconds, 3), params=_params(job))
        try:
            result = parse_fio_output(fio_run.stdout, fio_run.stderr)
        except FioError as e:
            sink.emit(replace(record, error=str(e)))
            return f"FAILED: {e}"
        _account(session, job, fio_run, result)
        if copied_up:
            error = "the read copied the lower-layer file up to the top layer"
            sink.emit(replace(record, error=error, metrics=result.metrics()))
            return f"FAILED: {error}"
        sink.emit(replace(record, status="ok", fio_version=result.fio_version, metrics=result.metrics(),
                          fio_messages=tuple(result.warnings)))
        return _summary(job, result.metrics())

    def cleanup(self, session: Session) -> None:
        self.targets = {}         # the session removes the containers, volumes and images
        self._scaled = {}


def settle_disk(session: Session) -> None:
    """Before a timed run: write out what earlier runs and probes left dirty on the backing
    filesystem and wait (bounded) for the disk to go idle, so no run measures another's writeback
    (docs/noise.md). Every placement of a session shares that filesystem, and its data root is a
    host directory storprof made or the daemon reports, never a path from inside a container.
    Where this machine cannot see it (an attached remote daemon) there is nothing to settle."""
    where = session.data_root or session.host_dir
    if where is None:
        return
    try:
        writeback.settle(where)
    except OSError:
        pass          # a settle is a courtesy to the measurement, never a reason to fail it


def _params(job: FioJob) -> dict:
    params = {"size": job.option("size"), "runtime": job.option("runtime"), "rw": job.option("rw"),
              "fsync": job.option("fsync"), "fdatasync": job.option("fdatasync"), "sync": job.option("sync"),
              "nrfiles": job.option("nrfiles"), "ramp_time": job.option("ramp_time"),
              "cpus_allowed": job.option("cpus_allowed"), "source": str(job.source)}
    if not job.own_files:
        params.update(data_file=data_file_name(job), file_state=file_state(job))
    return params


def _account(session: Session, job: FioJob, fio_run: FioRun, result: FioResult) -> None:
    """Of a timed run's wall time, charged to fio start-up, what fio measured (its runtime_ms) is
    fio measuring and the job's ramp_time (I/O fio does not measure) fio ramp."""
    measured = min(result.runtime_ms / 1000, fio_run.wall_seconds)
    ramp = min(time_seconds(job.option("ramp_time") or "0") or 0.0, fio_run.wall_seconds - measured)
    session.times.move(FIO_STARTUP, FIO_MEASURING, measured)
    session.times.move(FIO_STARTUP, FIO_RAMP, ramp)


def _drop_lower_files_from_cache(target: ContainerTarget, files: dict[str, str]) -> None:
    """Committing the lower-layer image wrote its files through the page cache, unlike the other
    placements' data files (written with direct I/O): drop their pages so no cache favours union.
    Through /proc/<pid>/root, which needs the daemon on this machine; elsewhere it is skipped."""
    try:
        root = container_root(target.container)
        for name in files:
            drop_cached_pages(root / LOWER_DIR.lstrip("/") / name)
    except OSError:
        pass


def _summary(job: FioJob, metrics: dict) -> str:
    if job.primary_metric == "bw":
        return f"{(metrics.get('total_bw_bytes') or 0) / 2**20:.1f} MiB/s"
    return f"{(metrics.get('total_iops') or 0):,.0f} IOPS"
