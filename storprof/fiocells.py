"""The fio workload: every (job, placement, repeat) cell, interleaved, on the session's targets.

Each placement of a spec sits on the same backing filesystem, so the host placement is the
baseline the others are divided by; the cells of one repeat of one job run back to back over the
placements (paired), with the first placement rotated from repeat to repeat so that drift of the
machine favours none. One container serves all the jobs of its placement: a container per run
would measure container start-up, not I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import FioError, StorprofError
from .filetiming import container_root, drop_cached_pages
from .fiojob import FioJob, precondition_job
from .fioresult import parse_fio_output
from .lowerlayer import image_with_files, remove_image
from .placements import LOWER_DIR, ContainerTarget, Target
from .records import FioRecord
from .workload import Done, Sink, Unit

if TYPE_CHECKING:
    from .results import ResultSet
    from .session import Session

WORKLOAD = "fio"


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


def data_file_name(job: FioJob) -> str:
    """One data file per size and I/O mode: jobs of equal size share it, so it is laid out once.
    Buffered jobs get their own file (pages they leave in the cache would make the next direct
    job pay for invalidating them); lower-layer jobs get their own too, only ever read, like the
    image's copy (see docs/findings.md, 'btrfs lower-layer read')."""
    size = (job.option("size") or "default").lower()
    if job.lower_layer:
        return f"storprof-{size}-lower.dat"
    return f"storprof-{size}.dat" if job.direct else f"storprof-{size}-buffered.dat"


class FioCells:
    """fio jobs on the placements of each session."""

    name = WORKLOAD

    def __init__(self, jobs: list[FioJob], placements: tuple[str, ...], repeat: int, fio_timeout: float):
        self.jobs = {j.name: j for j in jobs}
        self.placements = placements
        self.repeat = repeat
        self.fio_timeout = fio_timeout
        self.targets: dict[str, Target] = {}

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(WORKLOAD, r.context.driver_spec, r.job, r.placement, r.repeat)
                for r in results.of(FioRecord) if r.status == "ok"}

    def units(self, spec: str, done: Done) -> list[Unit]:
        order = plan_order(list(self.jobs), self.placements, self.repeat,
                           {n: j.placements for n, j in self.jobs.items()})
        units = [Unit(WORKLOAD, c.job, c.placement, c.repeat, (WORKLOAD, spec, c.job, c.placement, c.repeat))
                 for c in order]
        return [u for u in units if u.key not in done]

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

    def precondition(self, spec: str) -> None:
        """Bring every placement's data file to the same state before anything is measured.
        Untimed: a file fio has just laid out reads far faster than one written since."""
        for placement, target in self.targets.items():
            # A lower-layer job on union reads the image's file, written when the image was made.
            in_image = target.lower_dir != target.fio_dir
            files = {data_file_name(j): j.option("size") for j in self.jobs.values()
                     if j.option("size") and not j.own_files and not (j.lower_layer and in_image)}
            for filename, size in sorted(files.items()):
                text = precondition_job(size or "").render(directory=target.fio_dir, filename=filename)
                fio_run = target.run_fio(text, "precondition", self.fio_timeout)
                try:
                    parse_fio_output(fio_run.stdout, fio_run.stderr)
                except FioError as e:
                    raise StorprofError(f"[{spec}] preparing the {size} data file on {placement} failed: {e}") from None

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        """Run one job once on one target, emit its record (and keep fio's JSON); returns a summary."""
        job, target = self.jobs[unit.group], self.targets[unit.placement]
        if job.own_files:
            # Metadata jobs: a fresh directory per run, kept until the placement goes (see
            # docs/findings.md, 'ext4 and recently deleted inodes').
            text = job.render(directory=target.fresh_dir(f"{job.name}-r{unit.repeat}"))
        elif job.lower_layer:
            text = job.render(directory=target.lower_dir, filename=data_file_name(job))
        else:
            text = job.render(directory=target.fio_dir, filename=data_file_name(job))
        with session.times.phase("fio"):
            fio_run = target.run_fio(text, job.name, job.time_limit(self.fio_timeout))
        copied_up = None
        if job.lower_layer and target.lower_dir != target.fio_dir:
            copied_up = f"{target.lower_dir}/{data_file_name(job)}" in (target.modified_paths() or set())
        where = f"{session.spec.driver}-{session.spec.fs}/{target.placement}/{job.name}-r{unit.repeat}.json"
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
        if copied_up:
            error = "the read copied the lower-layer file up to the top layer"
            sink.emit(replace(record, error=error, metrics=result.metrics()))
            return f"FAILED: {error}"
        sink.emit(replace(record, status="ok", fio_version=result.fio_version, metrics=result.metrics(),
                          fio_messages=tuple(result.warnings)))
        return _summary(job, result.metrics())

    def cleanup(self, session: Session) -> None:
        self.targets = {}         # the session removes the containers, volumes and images


def _params(job: FioJob) -> dict:
    return {"size": job.option("size"), "runtime": job.option("runtime"), "rw": job.option("rw"),
            "fsync": job.option("fsync"), "fdatasync": job.option("fdatasync"), "sync": job.option("sync"),
            "nrfiles": job.option("nrfiles"), "ramp_time": job.option("ramp_time"),
            "cpus_allowed": job.option("cpus_allowed"), "source": str(job.source)}


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
