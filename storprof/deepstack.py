"""Deep stacks: what a file at the bottom of an image of K layers costs to find and first read.

Every layer of these images adds a file to the same directory, so that directory is merged from
all K layers and a lookup in it may walk each of them (as /usr/lib does in a real image). The
target file sits in the bottom layer. The images are written as a `docker save` archive and
loaded in one call: K commits would take minutes and measure commit, which `storprof layers`
already times. Their layers are byte-identical across depths, so a deeper image reuses the
shallower one's layers. Each sample is a fresh container, so its first lookup is cold.
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

import docker.errors

from .errors import DaemonError, StorprofError, UserError
from .filetiming import LookupTiming, fresh_container_root, time_lookup_and_read
from .image import RootfsPlan, plan_rootfs
from .lowerlayer import remove_image
from .probe import ProbeHooks

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


def job_names(depth: int, target_mib: int) -> dict[str, str]:
    base = f"stack K={depth}"
    return {"stat": f"{base} first stat", "open": f"{base} open", "read": f"{base} first read {target_mib}m"}


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
                        tag: str) -> None:
    """A `docker save` archive of one image of `depth` layers, the target in the bottom one."""
    diff_ids, layer_paths = [], []
    with tarfile.open(path, mode="w") as archive:
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
    os.close(fd)
    try:
        write_stack_archive(Path(name), depth, base, target, labels, tag)
        with open(name, "rb") as f:
            try:
                client.images.load(f)
            except docker.errors.DockerException as e:
                raise DaemonError(f"loading the {depth}-layer image failed: {e}") from None
    finally:
        os.unlink(name)
    return tag


class DeepStackProbe:
    """Builds the stacks in one daemon and times lookups in fresh containers of each."""

    def __init__(self, hooks: ProbeHooks, client, labels: dict[str, str], host_dir: Path | None,
                 name_prefix: str, tag_prefix: str, scratch: Path | None):
        self.hooks = hooks
        self.spec = hooks.spec
        self.client = client
        self.labels = labels
        self.host_dir = Path(host_dir) if host_dir else None
        self.prefix = name_prefix
        self.tag_prefix = tag_prefix
        self.scratch = scratch
        self._images: list[str] = []

    def run(self, plan: DeepStackPlan, repeats: int) -> None:
        self.hooks.progress(f"[{self.spec}] deep stacks: images of {', '.join(map(str, plan.depths))} layers, "
                      f"a {plan.target_mib} MiB file in the bottom one")
        base = plan_rootfs(("sleep",))
        target = target_bytes(plan.target_mib)
        images, layers = {}, {}
        for k in plan.depths:
            images[k] = build_stack_image(self.client, k, base, target, self.labels, f"{self.tag_prefix}-k{k}",
                                          self.scratch)
            self._images.append(images[k])
            layers[k] = len(self.client.images.get(images[k]).attrs["RootFS"]["Layers"])   # as the daemon sees it
            if layers[k] != k:
                raise StorprofError(f"the deep-stack image has {layers[k]} layers, not {k}")
        host_target = None
        if self.host_dir is not None:
            host_target = self.host_dir / TARGET
            host_target.parent.mkdir(parents=True, exist_ok=True)
            with open(host_target, "wb") as f:
                f.write(target)
                f.flush()
                os.fsync(f.fileno())
        placements = ("host", "union") if host_target else ("union",)
        for r in range(repeats):
            for i, k in enumerate(plan.depths):
                for placement in (placements if (r + i) % 2 == 0 else placements[::-1]):
                    if self.hooks.skip(placement, job_names(k, plan.target_mib)["read"], r):
                        continue
                    t = time_lookup_and_read(host_target) if placement == "host" else self._sample(images[k], k, r)
                    if t.bytes_read != len(target):
                        raise StorprofError(f"read {t.bytes_read} bytes of the {len(target)}-byte target")
                    names = job_names(k, plan.target_mib)
                    params = {"depth": k, "image_layers": layers[k], "target_mib": plan.target_mib}
                    self.hooks.emit(placement, names["stat"], r, t.stat_s, params)
                    self.hooks.emit(placement, names["open"], r, t.open_s, params)
                    self.hooks.emit(placement, names["read"], r, t.read_s, {**params, "cold_read": True})
                    self.hooks.done(placement, f"stack K={k}", r, f"first stat {t.stat_s * 1e6:.0f} µs, "
                              f"open {t.open_s * 1e6:.0f} µs, read {t.read_s * 1e3:.1f} ms")

    def _sample(self, image: str, depth: int, repeat: int) -> LookupTiming:
        with fresh_container_root(self.client, image, f"{self.prefix}-stack-k{depth}-r{repeat}", self.labels) as root:
            return time_lookup_and_read(root / TARGET)

    def cleanup(self) -> None:
        for image in reversed(self._images):
            remove_image(self.client, image)
        self._images.clear()
        if self.host_dir is not None:
            shutil.rmtree(self.host_dir / "stack", ignore_errors=True)
