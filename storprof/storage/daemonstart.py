"""Daemon start against the images it holds: how long dockerd takes to answer with 0, 50, 200 images.

A daemon restores its image and layer store before it serves (users report 10 minutes with 274
images), and with the containerd image store it also waits on its containerd. The session's
daemon is stopped and started again on the same data root, `samples` times per count; `seconds`
is from starting dockerd until its API answers a ping (what EphemeralDaemon.start() waits for,
polled every 10 ms here). The time until it has also listed its images is kept beside it
(`images_listed_seconds`, and a second listing alone as `relist_seconds`): with the containerd
store the ping does not grow with the images but the listing does (seconds for 200 images, on
every listing, not only the first), so the two answer different questions. Starts are warm: the
data root is in the page cache, as after a restart, not a boot.

The images are added between counts, going up: each is the bench image's layers plus one tiny
layer of its own (real images share their base layers), all missing ones in one `docker load` of
a generated `docker save` archive (no registry here; the load took 50-120 ms per image on the
development machine, most of it the daemon's own). The workload runs last in a session, so the
restarts disturb no other measurement; what the daemon reports present (images, containers) is
recorded with each sample.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import docker.errors

from storprof.engine.daemon import EphemeralDaemon
from storprof.errors import DaemonError, StorprofError, UserError
from storprof.harness.workload import Done, Sink, Unit
from storprof.results.records import ProbeRecord
from storprof.storage.probes.copyup import PROBE
from storprof.storage.probes.lowerlayer import load_archive

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

WORKLOAD = "daemon-start"
PLACEMENT = "daemon"
OPERATION = "start"       # one restart of the daemon, timed to its first answer
MARK = "storprof.daemon-start"        # a label of our own beside the run's: cleanup never meets the bench image
REPOSITORY = "storprof-start"
RESTART_TIMEOUT = 900                 # seconds a restart may take: the reports speak of minutes
POLL_SECONDS = 0.01                   # starts take a few hundred ms here; start() polls every 100 ms by default
_EPOCH = 1_700_000_000
_CREATED = "2023-11-14T22:13:20Z"


@dataclass(frozen=True)
class DaemonStartPlan:
    image_counts: tuple[int, ...] = (0, 50, 200)
    samples: int = 3

    def validate(self) -> None:
        if not self.image_counts or any(not 0 <= n <= 1000 for n in self.image_counts) or self.samples < 1:
            raise UserError("daemon start takes image counts from 0 to 1000 and 1 or more samples")

    def bytes_needed(self) -> int:
        """A tiny layer, its config and (overlay2, snapshotters) a directory per image: well under 1 MiB."""
        return (max(self.image_counts) + 1) * (1 << 20)


def job_name(count: int) -> str:
    return f"daemon start {count} images"


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, _EPOCH
    return info


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    archive.addfile(_member(name, len(data)), io.BytesIO(data))


def tiny_layer(index: int) -> bytes:
    """One small file of its own, the same bytes for the same index (so a layer id says which image)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _add(tar, f"storprof-start-{index:04d}", f"storprof daemon-start image {index}\n".encode())
    return buf.getvalue()


@dataclass(frozen=True)
class BaseImage:
    """The bench image as `docker save` wrote it: its config and its layers (members of `archive`)."""

    archive: Path
    config: dict
    layers: tuple[str, ...]


def save_base(client, ref: str, path: Path) -> BaseImage:
    """`docker save` of the image into `path`; both stores write manifest.json (Docker 25+ beside
    an OCI layout), whose layer paths are what a load of ours points at again."""
    with open(path, "wb") as f:
        try:
            for chunk in client.api.get_image(ref):
                f.write(chunk)
        except docker.errors.DockerException as e:
            raise DaemonError(f"saving {ref} failed: {e}") from None
    with tarfile.open(path) as tar:
        manifest = json.load(_read(tar, "manifest.json"))[0]
        config = json.load(_read(tar, manifest["Config"]))
    return BaseImage(path, config, tuple(manifest["Layers"]))


def _read(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    f = tar.extractfile(name)
    if f is None:
        raise StorprofError(f"the saved image has no {name}")
    return f


def write_images_archive(path: Path, base: BaseImage, first: int, count: int, labels: dict[str, str]) -> list[str]:
    """A `docker save` archive of images first..first+count-1, each the base's layers (stored once)
    and a tiny layer of its own on top; returns their tags."""
    tags, manifest = [], []
    with tarfile.open(path, mode="w") as archive, tarfile.open(base.archive) as saved:
        for name in dict.fromkeys(base.layers):
            layer = _read(saved, name)             # a layer saved as a link to its copy: the copy's bytes
            size = layer.seek(0, io.SEEK_END)
            layer.seek(0)
            archive.addfile(_member(name, size), layer)
        for i in range(first, first + count):
            tiny = tiny_layer(i)
            digest = hashlib.sha256(tiny).hexdigest()
            _add(archive, f"{digest}/layer.tar", tiny)
            config = copy.deepcopy(base.config)
            for key in ("container", "container_config", "parent", "id"):
                config.pop(key, None)
            config["created"] = _CREATED
            config.setdefault("config", {})
            config["config"]["Labels"] = {**labels, MARK: str(i)}
            config["rootfs"] = {"type": "layers", "diff_ids": [*config["rootfs"]["diff_ids"], f"sha256:{digest}"]}
            config["history"] = [*config.get("history", []),
                                 {"created": _CREATED, "created_by": f"storprof daemon-start image {i}"}]
            data = json.dumps(config, sort_keys=True).encode()
            config_name = f"{hashlib.sha256(data).hexdigest()}.json"
            _add(archive, config_name, data)
            tags.append(f"{REPOSITORY}:{labels_tag(labels)}-{i:04d}")
            manifest.append({"Config": config_name, "RepoTags": [tags[-1]],
                             "Layers": [*base.layers, f"{digest}/layer.tar"]})
        _add(archive, "manifest.json", json.dumps(manifest).encode())
    return tags


def labels_tag(labels: dict[str, str]) -> str:
    """The run id (the value of the run's label), as a tag's start."""
    return "-".join(labels.values()) or "run"


@dataclass(frozen=True)
class Restart:
    stop_s: float          # SIGTERM until dockerd is gone and its mounts with it
    ping_s: float          # start until the API answers a ping: EphemeralDaemon.start()
    list_s: float          # start until it has also listed its images
    relist_s: float        # a second listing alone: what listing costs once the daemon is warm
    images: int
    containers: int


def restart(daemon) -> Restart:
    """Stop the daemon and start it again on the same data root (start() makes a new client)."""
    t0 = time.perf_counter()
    daemon.stop()
    t1 = time.perf_counter()
    saved = daemon.start_timeout, daemon.poll_seconds
    daemon.start_timeout, daemon.poll_seconds = max(daemon.start_timeout, RESTART_TIMEOUT), POLL_SECONDS
    try:
        daemon.start()
        t2 = time.perf_counter()
        images = daemon.client.api.images()         # what `docker images` asks
        t3 = time.perf_counter()
    finally:
        daemon.start_timeout, daemon.poll_seconds = saved
    daemon.client.api.images()
    relist = time.perf_counter() - t3
    containers = daemon.client.api.containers(all=True, quiet=True)
    return Restart(t1 - t0, t2 - t1, t3 - t1, relist, len(images), len(containers))


class DaemonStart:
    """Per image count, in increasing order, `samples` restarts of the session's daemon. On an
    attached daemon (someone else's, never restarted) prepare says so and run is a no-op."""

    name = WORKLOAD

    def __init__(self, plan: DaemonStartPlan):
        self.plan = plan
        self._tags: list[str] = []
        self._attached = False
        self._base: BaseImage | None = None
        self._dir: Path | None = None

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(PROBE, r.context.driver_spec, r.identity, r.placement, r.repeat)
                for r in results.of(ProbeRecord) if r.workload == WORKLOAD}

    def units(self, spec: str, done: Done) -> list[Unit]:
        units = [Unit(WORKLOAD, job_name(n), PLACEMENT, s, (PROBE, spec, self.row_identity(n), PLACEMENT, s),
                      label=f"{job_name(n)} r{s + 1}")
                 for n in sorted(set(self.plan.image_counts)) for s in range(self.plan.samples)]
        return [u for u in units if u.key not in done]

    @staticmethod
    def row_identity(count: int) -> tuple:
        """What names the row of restarts with `count` extra images (records.ProbeRecord.IDENTITY)."""
        return ProbeRecord.identity_of(workload=WORKLOAD, operation=OPERATION, images=count)

    def prepare(self, session: Session, sink: Sink) -> None:
        self._attached = not session.daemon.ephemeral
        if self._attached:
            sink.message(f"[{session.label}] daemon start: not measured on an attached daemon (it would be restarted)")
            return
        sink.message(f"[{session.label}] daemon start: {self.plan.samples} restarts with "
                     f"{', '.join(map(str, sorted(set(self.plan.image_counts))))} extra images")
        # The run's containers still running (the fio targets, idle in `sleep`) would be stopped by
        # the first restart anyway, after dockerd waited 10 s for each to ignore SIGTERM.
        client = session.daemon.client
        running = {"label": [f"{k}={v}" for k, v in session.labels.items()], "status": "running"}
        for container in client.api.containers(filters=running, quiet=True):
            try:
                client.api.kill(container["Id"])
            except docker.errors.NotFound:
                pass

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        if self._attached:
            return "skipped: attached daemon"
        count = int(unit.group.split()[2])
        added = ""
        if len(self._tags) < count:
            seconds = self._add_images(session, count - len(self._tags))
            added = f"{count} images ready in {seconds:.1f} s; "
        try:
            r = restart(session.daemon)
        except DaemonError:
            _start_again(session)         # the session's teardown and other cleanups need a daemon
            raise
        sink.emit(ProbeRecord(context=session.context, workload=WORKLOAD, operation=OPERATION, images=count,
                              placement=PLACEMENT, repeat=unit.repeat, seconds=r.ping_s,
                              params={"images_present": r.images, "containers_present": r.containers,
                                      "images_listed_seconds": r.list_s, "relist_seconds": r.relist_s,
                                      "stop_seconds": r.stop_s}))
        return f"{added}up in {r.ping_s:.2f} s, listed {r.images} images at {r.list_s:.2f} s"

    def _add_images(self, session: Session, count: int) -> float:
        """Load `count` more images in one `docker load`; seconds it took, archive written and loaded."""
        start = time.perf_counter()
        client = session.daemon.client
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="storprof-start-", dir=session.scratch))
        if self._base is None:
            self._base = save_base(client, session.context.image or "", self._dir / "base.tar")
        archive = self._dir / "images.tar"
        try:
            tags = write_images_archive(archive, self._base, len(self._tags), count, session.labels)
            self._tags += tags            # before the load: a partial load is cleaned up too
            load_archive(client, archive, f"[{session.label}] {count} images")
        finally:
            archive.unlink(missing_ok=True)
        made = len(client.api.images(filters=_ours(session), quiet=True))
        if made != len(self._tags):
            raise StorprofError(f"[{session.label}] {made} images after loading, not {len(self._tags)}")
        return time.perf_counter() - start

    def cleanup(self, session: Session) -> None:
        """Our images by tag, then any left with our label (a load cut short); never the bench image."""
        daemon = session.daemon
        if self._tags and daemon is not None and (not isinstance(daemon, EphemeralDaemon) or daemon.alive()):
            client = daemon.client
            for tag in self._tags:
                try:
                    client.images.remove(tag, force=True)
                except docker.errors.NotFound:
                    pass
            for image in client.images.list(filters=_ours(session)):
                client.images.remove(image.id, force=True)
        self._tags.clear()
        self._base = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _ours(session: Session) -> dict:
    """The label filter of this workload's images in the session."""
    return {"label": [*(f"{k}={v}" for k, v in session.labels.items()), MARK]}


def _start_again(session: Session) -> None:
    daemon = session.daemon
    if isinstance(daemon, EphemeralDaemon) and not daemon.alive():
        try:
            daemon.start()
        except DaemonError:
            pass
