"""Union operations users hit on files an image ships: many small appends, a directory rename,
a chown of a large file.

Each changes a file or tree in a lower layer, so a union filesystem may copy it up first:
appending to thousands of small files copies each one; renaming a directory either copies the
whole tree (overlay without `redirect_dir`: rename(2) fails with EXDEV, and programs such as mv
then copy and delete, as done here) or only records a redirect; chown copies the whole file
unless overlay's `metacopy` lets it copy metadata alone. Each sample is a fresh container of an
image holding all three in a lower layer; the host baseline does the same on the same files in a
plain directory of the same backing filesystem. Besides the time, the space the operation took
on the container's filesystem (used blocks after a sync, before and after) says what was copied.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storprof.errors import StorprofError, UserError
from storprof.harness.workload import Done, Sink, Unit
from storprof.results.records import ProbeRecord
from storprof.storage.fio.placements import LOWER_DIR
from storprof.storage.probes.copyup import PROBE
from storprof.storage.probes.filetiming import container_root, fresh_container_root
from storprof.storage.probes.lowerlayer import commit_layer, remove_image

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet
    from storprof.storage.fio.placements import ContainerTarget

WORKLOAD = "union-ops"
SUBDIR = "unionops"
MIB = 2**20
OPS = ("append", "rename", "chown")
MOVED = "tree.moved"


@dataclass(frozen=True)
class UnionOpsPlan:
    small_files: int = 10000      # files appended to, once each
    small_bytes: int = 512        # each file's size, and what is appended
    tree_files: int = 1000        # files in the renamed directory
    tree_mib: int = 64            # their total size
    chown_mib: int = 512          # the file chown'ed

    def validate(self) -> None:
        if not (1 <= self.small_files <= 100000 and 1 <= self.small_bytes <= MIB and 1 <= self.tree_files <= 100000
                and 1 <= self.tree_mib <= 65536 and 1 <= self.chown_mib <= 65536):
            raise UserError("union operations take 1-100000 small files of 1 B-1 MiB, a tree of 1-100000 files "
                            "and 1-65536 MiB, and a file of 1-65536 MiB to chown")

    def bytes_needed(self) -> int:
        """Host copy, image layer, and (vfs, or a copy-up) one container's copy of each."""
        small = self.small_files * max(4096, 2 * self.small_bytes)
        return 4 * (small + self.tree_mib * MIB + self.tree_files * 4096 + self.chown_mib * MIB)


def row(plan: UnionOpsPlan, op: str) -> dict:
    """The fields that name one operation's row: the files and sizes it works on."""
    sizes = {"append": {"files": plan.small_files, "file_bytes": plan.small_bytes},
             "rename": {"files": plan.tree_files, "size_mib": plan.tree_mib},
             "chown": {"size_mib": plan.chown_mib}}[op]
    return {"workload": WORKLOAD, "operation": op, **sizes}


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def write_tree(root: Path, plan: UnionOpsPlan) -> None:
    """The files the operations change: small/f<i>, tree/d<j>/f<i>, big.dat, under `root`."""
    small = root / "small"
    small.mkdir(parents=True, exist_ok=True)
    pattern = b"\x5a" * plan.small_bytes
    for i in range(plan.small_files):
        (small / f"f{i}").write_bytes(pattern)
    per_file = max(1, plan.tree_mib * MIB // plan.tree_files)
    chunk = os.urandom(min(per_file, MIB))
    for i in range(plan.tree_files):
        d = root / "tree" / f"d{i % 16}"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"f{i}", "wb") as f:
            left = per_file
            while left > 0:
                left -= f.write(chunk[:left])
    with open(root / "big.dat", "wb") as f:
        block = os.urandom(MIB)
        for _ in range(plan.chown_mib):
            f.write(block)
    os.sync()


def used_bytes(path: Path) -> int:
    """Blocks in use on the filesystem holding `path`, after writing back what is dirty."""
    os.sync()
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def time_appends(directory: Path, count: int, data: bytes) -> float:
    """Open each file for appending, write `data`, close: what a log rotation or an in-place
    edit of many shipped files does."""
    t0 = time.perf_counter_ns()
    for i in range(count):
        fd = os.open(directory / f"f{i}", os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return (time.perf_counter_ns() - t0) / 1e9


def move_dir(src: Path, dst: Path) -> tuple[float, str]:
    """rename(2), and where it fails with EXDEV (overlay without redirect_dir) what mv does: copy
    the tree, then delete the original. Returns the seconds and which path was taken."""
    t0 = time.perf_counter_ns()
    try:
        os.rename(src, dst)
        how = "rename(2)"
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        shutil.copytree(src, dst, symlinks=True)
        shutil.rmtree(src)
        how = "copy+delete (EXDEV)"
    return (time.perf_counter_ns() - t0) / 1e9, how


def time_chown(path: Path, uid: int) -> float:
    t0 = time.perf_counter_ns()
    os.chown(path, uid, uid)
    return (time.perf_counter_ns() - t0) / 1e9


@dataclass(frozen=True)
class OpResult:
    op: str
    seconds: float
    bytes: int
    how: str = ""


class UnionOps:
    """Per repeat, the three operations on the host and in a fresh union container, placements in
    alternating order and the operations in a rotating one (so no operation always runs first)."""

    name = WORKLOAD

    def __init__(self, plan: UnionOpsPlan, repeat: int, sides: tuple[str, ...] = ("host", "union")):
        self.plan = plan
        self.repeat = repeat
        self.sides = sides
        self._image: str | None = None
        self._host_dir: Path | None = None
        self._host_moved = False
        self._host_uid = 0

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(PROBE, r.context.driver_spec, r.identity, r.placement, r.repeat)
                for r in results.of(ProbeRecord) if r.workload == WORKLOAD}

    def _order(self, repeat: int) -> tuple[str, ...]:
        k = repeat % len(OPS)
        return OPS[k:] + OPS[:k]

    def _key(self, spec: str, placement: str, repeat: int) -> tuple:
        last = ProbeRecord.identity_of(**row(self.plan, self._order(repeat)[-1]))   # what a finished sample writes last
        return (PROBE, spec, last, placement, repeat)

    def units(self, spec: str, done: Done) -> list[Unit]:
        units = [Unit(WORKLOAD, "union ops", p, r, self._key(spec, p, r))
                 for r in range(self.repeat) for p in (self.sides if r % 2 == 0 else self.sides[::-1])]
        return [u for u in units if u.key not in done]

    def prepare(self, session: Session, sink: Sink) -> None:
        p = self.plan
        sink.message(f"[{session.label}] union operations: append to {p.small_files} files of "
                     f"{_size(p.small_bytes)}, rename a {p.tree_mib} MiB directory, chown a {p.chown_mib} MiB "
                     "file, all in a lower layer, a fresh container per sample")

        def write(builder: ContainerTarget) -> None:
            write_tree(container_root(builder.container) / LOWER_DIR.lstrip("/") / SUBDIR, p)

        self._image = commit_layer(session.daemon.client, session.context.image or "", session.labels,
                                   f"{session.name_prefix}-unionops-build", write)
        if "host" in self.sides and session.host_dir is not None:
            self._host_dir = session.host_dir / SUBDIR
            shutil.rmtree(self._host_dir, ignore_errors=True)
            write_tree(self._host_dir, p)
            self._host_moved, self._host_uid = False, 0

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        if unit.placement == "host":
            if self._host_dir is None:
                raise StorprofError(f"[{session.label}] union operations have no host directory in this session")
            results = self._sample(self._host_dir, unit.repeat, host=True)
        else:
            with fresh_container_root(session.daemon.client, self._image or "",
                                      f"{session.name_prefix}-unionops-r{unit.repeat}", session.labels) as root:
                results = self._sample(root / LOWER_DIR.lstrip("/") / SUBDIR, unit.repeat, host=False)
        for r in results:
            sink.emit(ProbeRecord(context=session.context, placement=unit.placement, repeat=unit.repeat,
                                  seconds=r.seconds, params={"path": r.how} if r.how else {}, bytes=r.bytes,
                                  **row(self.plan, r.op)))
        return ", ".join(f"{r.op} {r.seconds * 1e3:.1f} ms (+{r.bytes / MIB:.1f} MiB{', ' + r.how if r.how else ''})"
                         for r in results)

    def _sample(self, root: Path, repeat: int, host: bool) -> list[OpResult]:
        if not (root / "big.dat").exists():
            raise StorprofError(f"the union-operation files are not in {root}")
        out = []
        for op in self._order(repeat):
            before = used_bytes(root)
            how = ""
            if op == "append":
                seconds = time_appends(root / "small", self.plan.small_files, b"\xa5" * self.plan.small_bytes)
            elif op == "rename":
                src, dst = root / "tree", root / MOVED
                if host and self._host_moved:
                    src, dst = dst, src
                seconds, how = move_dir(src, dst)
                if host:
                    self._host_moved = not self._host_moved
            else:
                uid = 1000
                if host:       # the host's file changes owner each time, as the container's does once
                    uid = 0 if self._host_uid == 1000 else 1000
                    self._host_uid = uid
                seconds = time_chown(root / "big.dat", uid)
            out.append(OpResult(op, seconds, used_bytes(root) - before, how))
        return out

    def cleanup(self, session: Session) -> None:
        remove_image(session.daemon.client, self._image)
        self._image = None
        if self._host_dir is not None:
            shutil.rmtree(self._host_dir, ignore_errors=True)
            self._host_dir = None
