"""Deep stacks: what a file at the bottom of an image of K layers costs to find and first read.

Every layer of these images adds a file to the same directory, so that directory is merged from
all K layers and a lookup in it may walk each of them (as /usr/lib does in a real image). The
target file sits in the bottom layer. The images are written as a `docker save` archive and
loaded in one call: K commits would take minutes and measure commit, which `storprof layers`
already times. Their layers are byte-identical across depths, so a deeper image reuses the
shallower one's layers. Each sample is a fresh container, and before it, on the host as in the
container, the kernel's dentry and inode caches are dropped: both first lookups are cold.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import random
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from storprof.engine.image import RootfsPlan, plan_rootfs
from storprof.errors import StorprofError, UserError
from storprof.harness.workload import Done, Sink, Unit
from storprof.results.records import ProbeRecord
from storprof.storage.probes.copyup import PROBE
from storprof.storage.probes.filetiming import drop_lookup_caches, fresh_container_root, time_lookup_and_read
from storprof.storage.probes.lowerlayer import load_archive, remove_image

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

MIB = 2**20
WORKLOAD = "deep-stack"
# Docker's layer store refuses chains deeper than 125 layers and overlay2 mounts at most 128
# lower directories, so 120 is the deepest image every driver here can run.
PRACTICAL_MAX_DEPTH = 120
STACK_DIR = "stack/d"
TARGET = f"{STACK_DIR}/target.dat"
_EPOCH = 1_700_000_000           # fixed mtimes: identical layers across depths, so they are shared


@dataclass(frozen=True)
class DeepStackPlan:
    depths: tuple[int, ...] = (1, 16, 64, PRACTICAL_MAX_DEPTH)
    target_mib: int = 4

    def validate(self) -> None:
        if not self.depths or any(not 1 <= k <= PRACTICAL_MAX_DEPTH for k in self.depths):
            raise UserError(f"--stack-depths takes layer counts from 1 to {PRACTICAL_MAX_DEPTH} "
                            "(Docker refuses deeper layer chains), or 'max'")
        if self.target_mib < 1:
            raise UserError("the deep-stack target file needs at least 1 MiB")

    def bytes_needed(self) -> int:
        """vfs keeps a full copy of the image per layer: the worst case."""
        return max(self.depths) * (self.target_mib + 8) * MIB


def parse_depths(text: str) -> tuple[int, ...]:
    """'1,16,64,max' -> (1, 16, 64, 120); sorted, without repeats."""
    depths = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "max":
            depths.add(PRACTICAL_MAX_DEPTH)
            continue
        try:
            depths.add(int(part))
        except ValueError:
            raise UserError(f"--stack-depths takes whole numbers or 'max', got {part!r}") from None
    return tuple(sorted(depths))


def group_name(depth: int) -> str:
    """The repeats of one depth: what the scheduler adds rounds to, and the progress shows."""
    return f"stack K={depth}"


def row(depth: int, target_mib: int, operation: str) -> dict:
    """The fields that name one deep-stack row: "first stat", "open" or "first read" (written last)."""
    return {"workload": WORKLOAD, "operation": operation, "depth": depth, "size_mib": target_mib}


def target_bytes(target_mib: int) -> bytes:
    """Incompressible, and the same on every run so the bottom layer is the same layer."""
    return random.Random(0).randbytes(target_mib * MIB)


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = _EPOCH
    return info


def _file_info(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = _EPOCH
    return info


def layer_tar(index: int, base: RootfsPlan | None, target: bytes | None) -> bytes:
    """Layer 1 holds `sleep` with its libraries and the target; layer i > 1 one small file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        made: set[str] = set()

        def add_dirs(path: str) -> None:
            parts = Path(path).parts
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in made:
                    tar.addfile(_dir_info(sub))
                    made.add(sub)

        add_dirs(STACK_DIR)
        if base is not None:
            for host, inside in base.files:
                name = inside.lstrip("/")
                add_dirs(str(Path(name).parent))
                with open(host, "rb") as f:
                    data = f.read()
                tar.addfile(_file_info(name, len(data), 0o755), io.BytesIO(data))
        if target is not None:
            tar.addfile(_file_info(TARGET, len(target)), io.BytesIO(target))
        else:
            data = f"layer {index}\n".encode()
            tar.addfile(_file_info(f"{STACK_DIR}/layer-{index:03d}", len(data)), io.BytesIO(data))
    return buf.getvalue()


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def write_stack_archive(path: Path, depth: int, base: RootfsPlan, target: bytes, labels: dict[str, str],
                        tag: str, file: BinaryIO | None = None) -> None:
    """A `docker save` archive of one image of `depth` layers, the target in the bottom one (into
    `file`, the descriptor `path` was made with, when given)."""
    diff_ids, layer_paths = [], []
    with tarfile.open(path if file is None else None, mode="w", fileobj=file) as archive:
        for i in range(1, depth + 1):
            data = layer_tar(i, base if i == 1 else None, target if i == 1 else None)
            digest = hashlib.sha256(data).hexdigest()
            diff_ids.append(f"sha256:{digest}")
            name = f"{digest}/layer.tar"
            if name not in layer_paths:
                archive.addfile(_file_info(name, len(data)), io.BytesIO(data))
            layer_paths.append(name)
        config = {"architecture": _architecture(), "os": "linux",
                  "created": "2023-11-14T22:13:20Z",
                  "config": {"Cmd": ["/bin/sleep", "infinity"], "Labels": dict(labels)},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"storprof deep-stack layer {i}"}
                              for i in range(1, depth + 1)]}
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
        archive.addfile(_file_info(config_name, len(config_bytes)), io.BytesIO(config_bytes))
        manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": layer_paths}]).encode()
        archive.addfile(_file_info("manifest.json", len(manifest)), io.BytesIO(manifest))


def build_stack_image(client, depth: int, base: RootfsPlan, target: bytes, labels: dict[str, str],
                      tag: str, scratch: Path | None) -> str:
    """Load the image of `depth` layers into the daemon; returns its tag."""
    fd, name = tempfile.mkstemp(prefix="storprof-stack-", suffix=".tar", dir=scratch)
    try:
        with os.fdopen(fd, "wb") as file:
            write_stack_archive(Path(name), depth, base, target, labels, tag, file)
        load_archive(client, Path(name), f"the {depth}-layer image")
    finally:
        os.unlink(name)
    return tag


class DeepStack:
    """The deep-stack workload: images of each depth, loaded once per session; per repeat and
    depth, a lookup on the host and one in a fresh container, in alternating order."""

    name = WORKLOAD

    def __init__(self, plan: DeepStackPlan, repeat: int, sides: tuple[str, ...] = ("host", "union")):
        self.plan = plan
        self.repeat = repeat
        self.sides = sides
        self._images: dict[int, str] = {}
        self._layers: dict[int, int] = {}
        self._target = b""
        self._host_target: Path | None = None

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(PROBE, r.context.driver_spec, r.identity, r.placement, r.repeat)
                for r in results.of(ProbeRecord) if r.workload == WORKLOAD}

    def units(self, spec: str, done: Done) -> list[Unit]:
        units = []
        for r in range(self.repeat):
            for i, k in enumerate(self.plan.depths):
                for placement in self.sides if (r + i) % 2 == 0 else self.sides[::-1]:
                    units.append(Unit(WORKLOAD, group_name(k), placement, r, self._key(spec, k, placement, r)))
        return [u for u in units if u.key not in done]

    def _key(self, spec: str, depth: int, placement: str, repeat: int) -> tuple:
        """A finished sample's resume key: the row it writes last."""
        last = ProbeRecord.identity_of(**row(depth, self.plan.target_mib, "first read"))
        return (PROBE, spec, last, placement, repeat)

    def group_of(self, record) -> str | None:
        if isinstance(record, ProbeRecord) and record.workload == WORKLOAD:
            return group_name(record.depth) if record.depth is not None else None
        return None

    def _depth(self, name: str) -> int:
        """The depth a group of this plan stands for (the group is a name, not read back)."""
        return next(k for k in self.plan.depths if group_name(k) == name)

    def extra_round(self, spec: str, group: str, repeat: int) -> list[Unit]:
        k = self._depth(group)
        order = self.sides if (repeat + self.plan.depths.index(k)) % 2 == 0 else self.sides[::-1]
        return [Unit(WORKLOAD, group, p, repeat, self._key(spec, k, p, repeat)) for p in order]

    def prepare(self, session: Session, sink: Sink) -> None:
        sink.message(f"[{session.label}] deep stacks: images of {', '.join(map(str, self.plan.depths))} layers, "
                     f"a {self.plan.target_mib} MiB file in the bottom one")
        base = plan_rootfs(("sleep",))
        self._target = target_bytes(self.plan.target_mib)
        client = session.daemon.client
        for k in self.plan.depths:
            tag = build_stack_image(client, k, base, self._target, session.labels,
                                    f"storprof-stack:{session.run_id}-k{k}", session.scratch)
            self._images[k] = tag
            self._layers[k] = len(client.images.get(tag).attrs["RootFS"]["Layers"])   # as the daemon sees it
            if self._layers[k] != k:
                raise StorprofError(f"the deep-stack image has {self._layers[k]} layers, not {k}")
        if "host" in self.sides and session.host_dir is not None:
            self._host_target = session.host_dir / TARGET
            self._host_target.parent.mkdir(parents=True, exist_ok=True)
            with open(self._host_target, "wb") as f:
                f.write(self._target)
                f.flush()
                os.fsync(f.fileno())

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        k = self._depth(unit.group)
        if unit.placement == "host":
            if self._host_target is None:
                raise StorprofError(f"[{session.label}] deep stacks have no host directory in this session")
            cold = drop_lookup_caches()
            t = time_lookup_and_read(self._host_target)
        else:
            with fresh_container_root(session.daemon.client, self._images[k],
                                      f"{session.name_prefix}-stack-k{k}-r{unit.repeat}", session.labels) as root:
                cold = drop_lookup_caches()
                t = time_lookup_and_read(root / TARGET)
        if t.bytes_read != len(self._target):
            raise StorprofError(f"read {t.bytes_read} bytes of the {len(self._target)}-byte target")
        params = {"image_layers": self._layers[k], "caches_dropped": cold}
        rows: tuple[tuple[str, float, dict], ...] = (("first stat", t.stat_s, {}), ("open", t.open_s, {}),
                                                     ("first read", t.read_s, {"cold_read": True}))
        for operation, seconds, extra in rows:
            sink.emit(ProbeRecord(context=session.context, placement=unit.placement, repeat=unit.repeat,
                                  seconds=seconds, params={**params, **extra},
                                  **row(k, self.plan.target_mib, operation)))
        return f"first stat {t.stat_s * 1e6:.0f} µs, open {t.open_s * 1e6:.0f} µs, read {t.read_s * 1e3:.1f} ms"

    def cleanup(self, session: Session) -> None:
        for image in reversed(list(self._images.values())):
            remove_image(session.daemon.client, image)
        self._images.clear()
        if self._host_target is not None:
            shutil.rmtree(self._host_target.parent.parent, ignore_errors=True)
            self._host_target = None
