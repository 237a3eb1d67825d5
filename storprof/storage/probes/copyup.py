"""Copy-up: what the first write into a file shipped in an image costs.

overlay2 and fuse-overlayfs copy the whole file to the top layer when it is first opened for
writing; btrfs copies only the extents written (at writeback); vfs copied everything when the
container was made. Each sample is a fresh container of an image whose S MiB file lives in a
lower layer, so every sample really copies up; the host baseline writes into a file of the same
size in a plain directory of the same backing filesystem. Before each sample the file's pages are
dropped from the page cache, as for an image not read recently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storprof.errors import StorprofError, UserError
from storprof.harness.workload import Done, Sink, Unit
from storprof.results.records import ProbeRecord
from storprof.storage.fio.job import precondition_job
from storprof.storage.fio.placements import LOWER_DIR
from storprof.storage.fio.result import parse_fio_output
from storprof.storage.probes.filetiming import WriteTiming, drop_cached_pages, fresh_container_root, time_write
from storprof.storage.probes.lowerlayer import image_with_files, remove_image

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

MIB = 2**20
WORKLOAD = "copyup"
PROBE = "probe"          # records of union probes are of this kind


@dataclass(frozen=True)
class CopyUpPlan:
    sizes_mib: tuple[int, ...] = (64, 512)

    def validate(self) -> None:
        if not self.sizes_mib or any(s < 1 for s in self.sizes_mib):
            raise UserError("--copyup-sizes takes sizes in MiB, 1 or more")

    def bytes_needed(self) -> int:
        """The host file, the image layer, and one container's copy of each size."""
        return 3 * sum(self.sizes_mib) * MIB


def file_name(size_mib: int) -> str:
    return f"copyup-{size_mib}m.dat"


# The rows one sample gives, in the order it writes them: the first write (open to pwrite, then
# to fsync) and the second.
OPERATIONS = ("first write", "first write+fsync", "second write", "second write+fsync")


def group_name(size_mib: int) -> str:
    """The repeats of one file size: what the scheduler adds rounds to, and the progress shows."""
    return f"copyup {size_mib}m"


def row(size_mib: int, operation: str) -> dict:
    """The fields that name one copy-up row (records.ProbeRecord.IDENTITY)."""
    return {"workload": WORKLOAD, "operation": operation, "size_mib": size_mib}


def sample_key(spec: str, size_mib: int, placement: str, repeat: int) -> tuple:
    """A finished sample's resume key: the row it writes last."""
    return (PROBE, spec, ProbeRecord.identity_of(**row(size_mib, OPERATIONS[-1])), placement, repeat)


def sample_file(path: Path) -> tuple[WriteTiming, WriteTiming]:
    """Drop the file's cached pages, then time the first 4 KiB write and a second one beside it."""
    drop_cached_pages(path)
    first = time_write(path, 0)
    second = time_write(path, 4096)
    return first, second


class CopyUp:
    """The copy-up workload: per repeat and file size, one sample on the host and one in a fresh
    union container, in alternating order."""

    name = WORKLOAD

    def __init__(self, plan: CopyUpPlan, repeat: int, sides: tuple[str, ...] = ("host", "union")):
        self.plan = plan
        self.repeat = repeat
        self.sides = sides
        self._images: dict[int, str] = {}
        self._host_dir: Path | None = None

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(PROBE, r.context.driver_spec, r.identity, r.placement, r.repeat)
                for r in results.of(ProbeRecord) if r.workload == WORKLOAD}

    def units(self, spec: str, done: Done) -> list[Unit]:
        units = []
        for r in range(self.repeat):
            for i, size in enumerate(self.plan.sizes_mib):
                for placement in self.sides if (r + i) % 2 == 0 else self.sides[::-1]:
                    units.append(Unit(WORKLOAD, group_name(size), placement, r, sample_key(spec, size, placement, r)))
        return [u for u in units if u.key not in done]

    def group_of(self, record) -> str | None:
        if isinstance(record, ProbeRecord) and record.workload == WORKLOAD:
            return group_name(record.size_mib) if record.size_mib is not None else None
        return None

    def _size(self, name: str) -> int:
        """The file size a group of this plan stands for (the group is a name, not read back)."""
        return next(s for s in self.plan.sizes_mib if group_name(s) == name)

    def extra_round(self, spec: str, group: str, repeat: int) -> list[Unit]:
        size = self._size(group)
        order = self.sides if (repeat + self.plan.sizes_mib.index(size)) % 2 == 0 else self.sides[::-1]
        return [Unit(WORKLOAD, group, p, repeat, sample_key(spec, size, p, repeat)) for p in order]

    def prepare(self, session: Session, sink: Sink) -> None:
        """One image per size (so a vfs container copies only its own file) and the host's files."""
        sink.message(f"[{session.label}] copy-up: files of {', '.join(f'{s} MiB' for s in self.plan.sizes_mib)} "
                     "in a lower layer, a fresh container per sample")
        for size in self.plan.sizes_mib:
            self._images[size] = image_with_files(session.daemon.client, session.context.image or "",
                                                  {file_name(size): f"{size}m"}, session.labels,
                                                  name=f"{session.name_prefix}-copyup-build-{size}m")
        if "host" in self.sides and session.host_dir is not None:
            host = session.target("host")
            self._host_dir = Path(host.fio_dir)
            for size in self.plan.sizes_mib:
                pre = precondition_job(f"{size}m")
                fio_run = host.run_fio(pre.render(directory=host.fio_dir, filename=file_name(size)),
                                       f"copyup-{size}m", 3600, limits=pre.limits())
                parse_fio_output(fio_run.stdout, fio_run.stderr)

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        size = self._size(unit.group)
        if unit.placement == "host":
            if self._host_dir is None:
                raise StorprofError(f"[{session.label}] copy-up has no host directory in this session")
            first, second = sample_file(self._host_dir / file_name(size))
        else:
            with fresh_container_root(session.daemon.client, self._images[size],
                                      f"{session.name_prefix}-copyup-{size}m-r{unit.repeat}", session.labels) as root:
                first, second = sample_file(root / LOWER_DIR.lstrip("/") / file_name(size))
        for operation, seconds in zip(OPERATIONS, (first.write_s, first.done_s, second.write_s, second.done_s),
                                      strict=True):
            sink.emit(ProbeRecord(context=session.context, placement=unit.placement, repeat=unit.repeat,
                                  seconds=seconds, **row(size, operation)))
        return (f"first write {first.write_s * 1e3:.1f} ms (+fsync {first.done_s * 1e3:.1f}), "
                f"second {second.write_s * 1e3:.2f} ms (+fsync {second.done_s * 1e3:.1f})")

    def cleanup(self, session: Session) -> None:
        for image in self._images.values():
            remove_image(session.daemon.client, image)
        self._images.clear()
        if self._host_dir is not None:
            for name in self._host_dir.glob("copyup-*m.dat"):
                name.unlink(missing_ok=True)
