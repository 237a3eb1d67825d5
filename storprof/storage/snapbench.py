"""containerd's snapshotter benchmark, ported: layers of files, 4-byte writes in the middle of
files, prepare, write and commit timed per layer, on every spec through Docker's API.

The original (containerd snapshots/benchsuite/benchmark_test.go, benchmarkSnapshotter) builds a
chain of 16 snapshots, each holding changes to the same 10 files /a../j of 1 MiB: layer i
(1-based) with i % 3 == 0 updates a, b, d, e, i, creates c, f, h, j and removes g; else with
i % 2 == 0 it updates a, e, h, j, creates b, d, g, i and removes c, f; else it creates all ten.
"update" opens the file O_WRONLY and writes 4 random bytes at size/2: a copy of the whole file
for a file-based snapshotter, a few blocks for a block-based one. It times Prepare (the active
snapshot on the parent), the write (mount, apply, unmount) and Commit; its authors reported the copying
native snapshotter ~60x slower than overlay.

Through Docker, on every spec (graphdrivers and containerd snapshotters alike):
- prepare = create + start a container of the layer below. Docker mounts the snapshot at start,
  so the original's mount is here, not in write. Layer 1 starts from a one-layer image of
  /bin/sleep and its libraries (a few MiB: a container needs a program), standing in for the
  original's empty parent; base="bench" starts from the bench image instead (tens of MiB that a
  copying driver then copies on every prepare and commit, burying the benchmark's own data).
- write = the layer's changes, in storprof's process through the container's root
  (/proc/<pid>/root), as the original: open(O_CREAT|O_TRUNC, 0777), the bytes, chmod, close for
  a new file; no fsync, as the original has none (its unmount does not sync either). The random
  bytes (one block per layer, the same for every new file of the layer, as the original's one
  seed per layer) are made before the timer starts: the original times its RNG, this does not.
- commit = `docker commit` to an image: Docker computes the diff, tars it and writes it as a new
  layer (with the containerd store: into the content store, then unpacked into a snapshot), so it
  copies the changed data where the original's Commit only renames a snapshot. That is what a
  user of Docker pays; the figures are not the original's commit.
Each stage's `bytes` is what the data root grew by: blocks allocated (st_blocks, each inode
once, delayed allocation included, overlay or FUSE mounts in it skipped), so a copy shows as its size; on btrfs an
extent shared by snapshots counts for every file that holds it.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors

from storprof.engine import containers
from storprof.engine.image import plan_rootfs
from storprof.errors import DaemonError, StorprofError, UserError, first_line
from storprof.harness.workload import Done, Sink, Unit
from storprof.host.usage import allocated_bytes
from storprof.results.records import ProbeRecord
from storprof.storage.probes.copyup import PROBE
from storprof.storage.probes.deepstack import build_stack_image
from storprof.storage.probes.filetiming import container_root
from storprof.storage.probes.lowerlayer import remove_image

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

WORKLOAD = "snapbench"
STAGES = ("prepare", "write", "commit")
PLACEMENT = "union"
BASES = ("minimal", "bench")

CREATE, UPDATE, REMOVE = "create", "update", "remove"
# makeApplier's three layer kinds in its order: (file a..j as 0..9, action); note f before e in
# the first. A shape of more than 10 files repeats them for each block of ten.
_EVERY_THIRD = ((0, UPDATE), (1, UPDATE), (2, CREATE), (3, UPDATE), (5, CREATE), (4, UPDATE), (6, REMOVE),
                (7, CREATE), (8, UPDATE), (9, CREATE))
_EVERY_SECOND = ((0, UPDATE), (1, CREATE), (2, REMOVE), (3, CREATE), (4, UPDATE), (5, REMOVE), (6, CREATE),
                 (7, UPDATE), (8, CREATE), (9, UPDATE))
_ALL_NEW = tuple((k, CREATE) for k in range(10))


@dataclass(frozen=True)
class SnapBenchPlan:
    layers: int = 16
    files: int = 10
    file_kib: int = 1024
    base: str = "minimal"          # layer 1's parent: "minimal" (sleep and its libraries) or "bench"

    def validate(self) -> None:
        if not (1 <= self.layers <= 100 and 1 <= self.files <= 1000 and 1 <= self.file_kib <= 65536):
            raise UserError("the snapshotter benchmark takes 1-100 layers of 1-1000 files of 1-65536 KiB")
        if self.base not in BASES:
            raise UserError(f"the snapshotter benchmark's base is one of {', '.join(BASES)}")

    def bytes_needed(self) -> int:
        # vfs copies every layer below into each new one
        return 2 * self.layers * self.layers * self.files * self.file_kib * 1024


def stage_key(spec: str, stage: str, layer: int) -> tuple:
    """The resume key of one stage of one layer (1-based)."""
    return (PROBE, spec, ProbeRecord.identity_of(workload=WORKLOAD, operation=stage), PLACEMENT, layer - 1)


def file_name(k: int) -> str:
    """The original's names a..j; beyond ten files a0..j0, a1..j1, ... (the same columns)."""
    return "abcdefghij"[k % 10] + ("" if k < 10 else str(k // 10 - 1))


def layer_actions(layer: int, files: int) -> list[tuple[str, str]]:
    """(file name, action) in the original's order for 1-based `layer`; file k does what the
    original's file k % 10 does, so every update and remove finds its file in a lower layer."""
    kind = _EVERY_THIRD if layer % 3 == 0 else _EVERY_SECOND if layer % 2 == 0 else _ALL_NEW
    return [(file_name(block + k), action) for block in range(0, files, 10) for k, action in kind
            if block + k < files]


@dataclass(frozen=True)
class Applied:
    seconds: float
    created: int
    updated: int
    removed: int
    written_bytes: int


def apply_layer(root: Path, layer: int, files: int, content: bytes) -> Applied:
    """The original's appliers for one layer under `root`, timed together (no fsync, as there)."""
    counts = {CREATE: 0, UPDATE: 0, REMOVE: 0}
    written = 0
    poke = os.urandom(4)
    t0 = time.perf_counter()
    for name, action in layer_actions(layer, files):
        path = root / name
        if action == CREATE:          # fstest.CreateRandomFile: WriteFileStream, then chmod
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o777)
            try:
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.chmod(path, 0o777)
            written += len(content)
        elif action == UPDATE:        # updateFile: 4 random bytes at size/2
            fd = os.open(path, os.O_WRONLY)
            try:
                os.pwrite(fd, poke, os.fstat(fd).st_size // 2)
            finally:
                os.close(fd)
            written += len(poke)
        else:                         # fstest.RemoveAll: gone already is fine
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        counts[action] += 1
    seconds = time.perf_counter() - t0
    return Applied(seconds, counts[CREATE], counts[UPDATE], counts[REMOVE], written)


def _delta(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


class SnapBench:
    """One chain of layers per spec (each layer's container starts from the image the layer
    below committed), so a spec is one unit."""

    name = WORKLOAD

    def __init__(self, plan: SnapBenchPlan):
        self.plan = plan
        self._images: list[str] = []
        self._containers: list[str] = []
        self._base: str | None = None

    def _key(self, spec: str) -> tuple:
        return stage_key(spec, "commit", self.plan.layers)

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(PROBE, r.context.driver_spec, r.identity, r.placement, r.repeat)
                for r in results.of(ProbeRecord) if r.workload == WORKLOAD}

    def units(self, spec: str, done: Done) -> list[Unit]:
        p = self.plan
        unit = Unit(WORKLOAD, "snapbench", PLACEMENT, 0, self._key(spec),
                    label=f"snapbench {p.layers} layers x {p.files} files x {p.file_kib} KiB")
        return [] if unit.key in done else [unit]

    def prepare(self, session: Session, sink: Sink) -> None:
        p = self.plan
        sink.message(f"[{session.label}] snapbench: a chain of {p.layers} layers of {p.files} files of "
                     f"{p.file_kib} KiB (containerd's benchsuite), prepare/write/commit timed per layer")
        if p.base == "minimal":
            tag = f"storprof-snapbench:{session.run_id}-base"
            build_stack_image(session.daemon.client, 1, plan_rootfs(("sleep",)), b"snapbench base\n",
                              session.labels, tag, session.scratch)
            self._base = tag

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        p = self.plan
        client = session.daemon.client
        chain = uuid.uuid4().hex[:8]       # a resumed spec reruns the whole chain; the views keep one
        parent = self._base or session.context.image or ""
        totals = dict.fromkeys(STAGES, 0.0)
        for layer in range(1, p.layers + 1):
            content = random.Random(layer).randbytes(p.file_kib * 1024)   # the original: one seed per layer
            params = {"layer": layer, "layers": p.layers, "files": p.files, "file_kib": p.file_kib, "base": p.base,
                      "chain": chain}
            name = f"{session.name_prefix}-snapbench-{layer}"
            used0 = allocated_bytes(session.data_root)
            t0 = time.perf_counter()
            try:
                container = containers.create(client, parent, labels=session.labels, name=name)
                self._containers.append(container.id)
                t1 = time.perf_counter()
                container.start()
                t2 = time.perf_counter()
            except docker.errors.DockerException as e:
                raise DaemonError(f"[{session.label}] snapbench layer {layer}: prepare: {first_line(e)}") from None
            used1 = allocated_bytes(session.data_root)
            try:
                applied = apply_layer(container_root(container), layer, p.files, content)
            except OSError as e:
                raise StorprofError(f"[{session.label}] snapbench layer {layer}: write failed: {e}") from None
            used2 = allocated_bytes(session.data_root)
            changes = [f"LABEL {k}={v}" for k, v in session.labels.items()] + ['CMD ["/bin/sleep", "infinity"]']
            t3 = time.perf_counter()
            try:
                image = container.commit(changes=changes)
            except docker.errors.DockerException as e:
                raise DaemonError(f"[{session.label}] snapbench layer {layer}: commit: {first_line(e)}") from None
            t4 = time.perf_counter()
            self._images.append(image.id)
            used3 = allocated_bytes(session.data_root)
            layers_now = len((image.attrs.get("RootFS") or {}).get("Layers") or [])
            t5 = time.perf_counter()
            container.remove(force=True)
            self._containers.remove(container.id)
            removed_s = time.perf_counter() - t5
            stages: dict[str, tuple[float, int | None, dict]] = {
                "prepare": (t2 - t0, _delta(used0, used1), {"create_s": t1 - t0, "start_s": t2 - t1}),
                "write": (applied.seconds, _delta(used1, used2),
                          {"created": applied.created, "updated": applied.updated, "removed": applied.removed,
                           "written_bytes": applied.written_bytes}),
                "commit": (t4 - t3, _delta(used2, used3), {"image_layers": layers_now, "remove_s": removed_s}),
            }
            for stage, (seconds, used, extra) in stages.items():
                totals[stage] += seconds
                sink.emit(ProbeRecord(context=session.context, workload=WORKLOAD, operation=stage, placement=PLACEMENT,
                                      repeat=layer - 1, seconds=seconds,
                                      params={**params, **extra}, bytes=used))
            parent = image.id
        return ", ".join(f"{s} {totals[s]:.2f} s" for s in STAGES) + f" over {p.layers} layers"

    def cleanup(self, session: Session) -> None:
        """The containers and images this workload made, newest first (each image is the parent
        of the next)."""
        client = session.daemon.client
        for cid in reversed(self._containers):
            try:
                client.containers.get(cid).remove(force=True)
            except docker.errors.NotFound:
                pass
        self._containers.clear()
        for image in reversed(self._images):
            remove_image(client, image)
        self._images.clear()
        remove_image(client, self._base)
        self._base = None
