"""Shared page cache: how much memory K containers reading the same lower-layer file take.

overlay hands every container the lower layer's own inode, so one cached copy serves them all;
vfs and the native snapshotter gave each container its own copy of the file, and btrfs snapshots
are separate inodes, so each container caches its own. That is memory per container, a density
question. Per sample: K fresh containers of an image whose lower layer holds one file, the page
cache dropped (sync, then drop_caches=1: clean pages only, no setting changed), then each
container's copy read whole in turn, the growth of the kernel's page cache (Cached in
/proc/meminfo) and the read's time recorded per reader. The host baseline reads one host file K
times: the first read fills the cache, the later ones find it there.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storprof.errors import StorprofError, UserError
from storprof.harness.workload import Done, Sink, Unit
from storprof.results.records import ProbeRecord
from storprof.storage.fio.job import precondition_job
from storprof.storage.fio.placements import LOWER_DIR
from storprof.storage.fio.result import parse_fio_output
from storprof.storage.probes.copyup import PROBE
from storprof.storage.probes.filetiming import READ_CHUNK, fresh_container_root
from storprof.storage.probes.lowerlayer import image_with_files, remove_image

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

WORKLOAD = "page-cache"
MIB = 2**20
FILE = "pagecache.dat"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class PageCachePlan:
    containers: int = 4
    file_mib: int = 64

    def validate(self) -> None:
        if not 2 <= self.containers <= 32 or not 1 <= self.file_mib <= 4096:
            raise UserError("the page-cache probe takes 2-32 containers reading a file of 1-4096 MiB")

    def bytes_needed(self) -> int:
        return (self.containers + 3) * self.file_mib * MIB


def row(plan: PageCachePlan, operation: str) -> dict:
    """The fields that name one row: "first reader", "later reader" (their mean) or "all readers"."""
    return {"workload": WORKLOAD, "operation": operation, "containers": plan.containers, "size_mib": plan.file_mib}


def cached_bytes(text: str | None = None) -> int:
    """Cached in /proc/meminfo: the page cache, in bytes."""
    text = MEMINFO.read_text() if text is None else text
    for line in text.splitlines():
        if line.startswith("Cached:"):
            return int(line.split()[1]) * 1024
    raise StorprofError("/proc/meminfo has no Cached line")


def drop_page_cache() -> None:
    """Write back dirty pages, then drop the clean ones ('1': the page cache, not dentries)."""
    os.sync()
    try:
        DROP_CACHES.write_text("1\n")
    except OSError as e:
        raise StorprofError(f"cannot drop the page cache ({e.strerror}; needs root on the daemon's machine)") from None


def read_all(path: Path) -> tuple[float, int]:
    """Seconds to read the whole file through the page cache, and the bytes read."""
    total = 0
    t0 = time.perf_counter_ns()
    fd = os.open(path, os.O_RDONLY)
    try:
        while chunk := os.read(fd, READ_CHUNK):
            total += len(chunk)
    finally:
        os.close(fd)
    return (time.perf_counter_ns() - t0) / 1e9, total


@dataclass(frozen=True)
class Reader:
    seconds: float
    growth: int        # bytes the page cache grew by during this read


def read_in_turn(paths: list[Path], size: int) -> list[Reader]:
    """Drop the page cache, then read each path whole, one after the other."""
    drop_page_cache()
    out = []
    for path in paths:
        before = cached_bytes()
        seconds, total = read_all(path)
        growth = cached_bytes() - before
        if total != size:
            raise StorprofError(f"read {total} bytes of the {size}-byte file {path}")
        out.append(Reader(seconds, growth))
    return out


class PageCache:
    """Per repeat, K readers on the host and in K fresh union containers, in alternating order."""

    name = WORKLOAD

    def __init__(self, plan: PageCachePlan, repeat: int, sides: tuple[str, ...] = ("host", "union")):
        self.plan = plan
        self.repeat = repeat
        self.sides = sides
        self._image: str | None = None
        self._host_file: Path | None = None

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(PROBE, r.context.driver_spec, r.identity, r.placement, r.repeat)
                for r in results.of(ProbeRecord) if r.workload == WORKLOAD}

    def units(self, spec: str, done: Done) -> list[Unit]:
        last = ProbeRecord.identity_of(**row(self.plan, "all readers"))       # what a finished sample writes last
        units = [Unit(WORKLOAD, "page cache", p, r, (PROBE, spec, last, p, r))
                 for r in range(self.repeat) for p in (self.sides if r % 2 == 0 else self.sides[::-1])]
        return [u for u in units if u.key not in done]

    def prepare(self, session: Session, sink: Sink) -> None:
        sink.message(f"[{session.label}] page cache: {self.plan.containers} containers read one {self.plan.file_mib} "
                     "MiB lower-layer file in turn")
        self._image = image_with_files(session.daemon.client, session.context.image or "",
                                       {FILE: f"{self.plan.file_mib}m"}, session.labels,
                                       name=f"{session.name_prefix}-pagecache-build")
        if "host" in self.sides and session.host_dir is not None:
            host = session.target("host")
            self._host_file = Path(host.fio_dir) / FILE
            pre = precondition_job(f"{self.plan.file_mib}m")
            fio_run = host.run_fio(pre.render(directory=host.fio_dir, filename=FILE), "pagecache", 3600,
                                   limits=pre.limits())
            parse_fio_output(fio_run.stdout, fio_run.stderr)

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        size = self.plan.file_mib * MIB
        k = self.plan.containers
        if unit.placement == "host":
            if self._host_file is None:
                raise StorprofError(f"[{session.label}] the page-cache probe has no host file in this session")
            readers = read_in_turn([self._host_file] * k, size)
        else:
            with contextlib.ExitStack() as stack:
                roots = [stack.enter_context(fresh_container_root(
                    session.daemon.client, self._image or "",
                    f"{session.name_prefix}-pagecache-r{unit.repeat}-c{i}", session.labels)) for i in range(k)]
                readers = read_in_turn([root / LOWER_DIR.lstrip("/") / FILE for root in roots], size)
        later = readers[1:]
        rows = (("first reader", readers[0].seconds, readers[0].growth),
                ("later reader", sum(r.seconds for r in later) / len(later),
                 round(sum(r.growth for r in later) / len(later))),
                ("all readers", sum(r.seconds for r in readers), sum(r.growth for r in readers)))
        for operation, seconds, growth in rows:
            sink.emit(ProbeRecord(context=session.context, placement=unit.placement, repeat=unit.repeat,
                                  seconds=seconds, bytes=int(growth),
                                  params={"growth_per_reader": [r.growth for r in readers]},
                                  **row(self.plan, operation)))
        return (f"page cache +{readers[0].growth / MIB:.0f} MiB for the 1st reader, "
                f"+{sum(r.growth for r in later) / len(later) / MIB:.1f} MiB for each later one")

    def cleanup(self, session: Session) -> None:
        remove_image(session.daemon.client, self._image)
        self._image = None
        if self._host_file is not None:
            self._host_file.unlink(missing_ok=True)
            self._host_file = None
