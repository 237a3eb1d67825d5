"""Lookup: what stat() of many files an image ships costs, cold and warm.

A dependency scan, `git status` or `make` stats thousands of files. For a file in a lower image
layer a union filesystem has to find it through its layers; the first pass after a boot or in a
fresh container (here: a fresh container, with the kernel's dentry and inode caches dropped before
it) pays the full walk, the second pass is served from the dentry cache. Timed in storprof's own
process with a nanosecond clock on the container's root (/proc/<pid>/root), not by fio, whose
filestat engine spends most of each operation in fio itself (docs/findings.md). The host baseline
stats the same number of files in a plain directory of the same backing filesystem, its caches
dropped the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storprof.errors import StorprofError, UserError
from storprof.harness.workload import Done, Sink, Unit
from storprof.results.records import ProbeRecord
from storprof.storage.fio.options import MAX_FILES
from storprof.storage.fio.placements import LOWER_DIR, ContainerTarget
from storprof.storage.fio.result import parse_fio_output
from storprof.storage.probes.copyup import PROBE
from storprof.storage.probes.filetiming import drop_lookup_caches, fresh_container_root, time_stats
from storprof.storage.probes.lowerlayer import commit_layer, remove_image

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

WORKLOAD = "lookup"
SUBDIR = "lookup"


@dataclass(frozen=True)
class LookupPlan:
    files: int = 20000

    def validate(self) -> None:
        if not 100 <= self.files <= MAX_FILES:
            raise UserError(f"--lookup-files takes a count from 100 to {MAX_FILES}")

    def bytes_needed(self) -> int:
        """Empty files: an inode each, a directory entry each; vfs copies them per container."""
        return 4 * self.files * 4096


def row(files: int, operation: str) -> dict:
    """The fields that name one row: the "cold" pass or the "warm" one (written last)."""
    return {"workload": WORKLOAD, "operation": operation, "files": files}


def file_names(files: int) -> list[str]:
    """What fio's filecreate names them (filename_format=f$filenum), sorted as a scan would."""
    return sorted(f"f{i}" for i in range(files))


def _create_in_container(builder: ContainerTarget, files: int) -> None:
    """fio's filecreate engine makes the empty files (the bench image has no shell)."""
    text = (f"[global]\nioengine=filecreate\nfilesize=4k\nfallocate=none\nnrfiles={files}\nopenfiles=1\n"
            f"filename_format=f$filenum\ndirectory={LOWER_DIR}/{SUBDIR}\n[lookup]\nrw=write\nbs=4k\n")
    builder.exec(["/bin/mkdir", "-p", f"{LOWER_DIR}/{SUBDIR}"])
    fio_run = builder.run_fio(text, "lookup-files", 3600)
    parse_fio_output(fio_run.stdout, fio_run.stderr)


class Lookup:
    """The lookup workload: per repeat, a cold and a warm stat() of every file, on the host and in
    a fresh container of an image whose lower layer holds the files, in alternating order."""

    name = WORKLOAD

    def __init__(self, plan: LookupPlan, repeat: int, sides: tuple[str, ...] = ("host", "union")):
        self.plan = plan
        self.repeat = repeat
        self.sides = sides
        self._image: str | None = None
        self._host_dir: Path | None = None
        self._names: list[str] = []

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(PROBE, r.context.driver_spec, r.identity, r.placement, r.repeat)
                for r in results.of(ProbeRecord) if r.workload == WORKLOAD}

    def units(self, spec: str, done: Done) -> list[Unit]:
        last = ProbeRecord.identity_of(**row(self.plan.files, "warm"))
        units = [Unit(WORKLOAD, f"lookup {self.plan.files}", placement, r, (PROBE, spec, last, placement, r))
                 for r in range(self.repeat) for placement in (self.sides if r % 2 == 0 else self.sides[::-1])]
        return [u for u in units if u.key not in done]

    def group_of(self, record) -> str | None:
        if isinstance(record, ProbeRecord) and record.workload == WORKLOAD:
            return f"lookup {self.plan.files}"
        return None

    def extra_round(self, spec: str, group: str, repeat: int) -> list[Unit]:
        last = ProbeRecord.identity_of(**row(self.plan.files, "warm"))
        order = self.sides if repeat % 2 == 0 else self.sides[::-1]
        return [Unit(WORKLOAD, group, p, repeat, (PROBE, spec, last, p, repeat)) for p in order]

    def prepare(self, session: Session, sink: Sink) -> None:
        sink.message(f"[{session.label}] lookup: {self.plan.files} empty files in a lower layer, stat() cold "
                     "then warm, a fresh container per sample")
        self._image = commit_layer(session.daemon.client, session.context.image or "", session.labels,
                                   f"{session.name_prefix}-lookup-build",
                                   lambda builder: _create_in_container(builder, self.plan.files))
        self._names = file_names(self.plan.files)
        if "host" in self.sides and session.host_dir is not None:
            self._host_dir = session.host_dir / SUBDIR
            self._host_dir.mkdir(parents=True, exist_ok=True)
            for name in self._names:
                (self._host_dir / name).touch()

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        if unit.placement == "host":
            if self._host_dir is None:
                raise StorprofError(f"[{session.label}] lookup has no host directory in this session")
            cold, warm = self._sample(self._host_dir)
        else:
            with fresh_container_root(session.daemon.client, self._image or "",
                                      f"{session.name_prefix}-lookup-r{unit.repeat}", session.labels) as root:
                cold, warm = self._sample(root / LOWER_DIR.lstrip("/") / SUBDIR)
        for operation, seconds in (("cold", cold), ("warm", warm)):
            sink.emit(ProbeRecord(context=session.context, placement=unit.placement, repeat=unit.repeat,
                                  seconds=seconds, **row(self.plan.files, operation)))
        per = 1e6 / self.plan.files
        return f"cold {cold * per:.1f} µs, warm {warm * per:.1f} µs per file"

    def _sample(self, directory: Path) -> tuple[float, float]:
        paths = [os.path.join(directory, n) for n in self._names]
        if not os.path.exists(paths[0]):
            raise StorprofError(f"the lookup files are not in {directory}")
        if not drop_lookup_caches():
            raise StorprofError("cannot drop the dentry and inode caches (needs root on the daemon's machine)")
        return time_stats(paths), time_stats(paths)

    def cleanup(self, session: Session) -> None:
        remove_image(session.daemon.client, self._image)
        self._image = None
        if self._host_dir is not None:
            for name in self._names:
                (self._host_dir / name).unlink(missing_ok=True)
            self._host_dir.rmdir()
            self._host_dir = None
