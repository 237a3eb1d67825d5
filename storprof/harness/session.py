"""Sessions: one daemon to measure, set up, handed to the workloads, and torn down in reverse.

A session owns everything made for one driver spec: the backing filesystem and the daemon (for an
ephemeral session), the bench image, the containers its targets run in, and the RunContext every
record of the spec carries. Each resource is written to the run's ownership record (state.py)
before it is made, and its removal is pushed on one ExitStack, so leaving the `with` block (also
by an error or Ctrl-C) removes exactly what was made, newest first. A new kind of daemon (another
engine, the containerd image store) is a new Session class.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from storprof.engine import containers, drivers, unionconfig
from storprof.engine.daemon import AttachedDaemon, Daemon, EphemeralDaemon
from storprof.engine.drivers import DriverSpec
from storprof.engine.engines import all_engines
from storprof.engine.engines import find as find_engine
from storprof.engine.image import BenchImage, RootfsPlan
from storprof.engine.unionconfig import OverlayParams
from storprof.errors import StorprofError
from storprof.harness.state import RunState
from storprof.harness.timeaccount import BACKING_FS, CONTAINERS, DAEMON_START, IMAGE, TEARDOWN, TimeAccount
from storprof.host import backing
from storprof.host.mounts import host_fs_type
from storprof.results import mem_total_bytes
from storprof.results.records import Backing, RunContext
from storprof.storage.fio.placements import AA, ContainerTarget, HostTarget, Target


class Session:
    """What workloads get: the daemon, the context, directories, and a factory for targets."""

    spec: DriverSpec
    daemon: Daemon
    context: RunContext
    host_dir: Path | None = None          # the host baseline's directory (None when attached)
    data_root: Path | None = None         # the daemon's data root, where this machine can see it

    def __init__(self, run_id: str, run_dir: Path, state: RunState, times: TimeAccount,
                 message: Callable[[str], None], user_image: str | None = None, scratch: Path | None = None):
        self.run_id = run_id
        self.run_dir = run_dir
        self.state = state
        self.times = times
        self.message = message
        self.user_image = user_image
        self.scratch = scratch               # where large temporary files (image tars) are written
        self.labels = containers.labels_for(run_id)
        self._stack = contextlib.ExitStack()

    @property
    def label(self) -> str:
        return str(self.spec)

    @property
    def name_prefix(self) -> str:
        """What every container and image this session makes is named after."""
        return f"storprof-{self.run_id}-{self.spec.slug}"

    def __enter__(self) -> Session:
        try:
            self._setup()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _setup(self) -> None:
        raise NotImplementedError

    def on_close(self, fn: Callable, *args) -> None:
        """Run `fn` when the session closes; given before entering, it runs after every teardown."""
        self._stack.callback(fn, *args)

    def callback(self, fn: Callable, *args) -> None:
        """Undo something at teardown, newest first (timed as teardown)."""
        def undo() -> None:
            with self.times.phase(TEARDOWN):
                fn(*args)
        self._stack.callback(undo)

    def _import_bench_image(self) -> str:
        with self.times.phase(IMAGE):
            image = BenchImage(self.daemon.client, self.labels, self.user_image)
            self.callback(image.remove)
            return image.ensure(bench_rootfs(), self.scratch) if not self.user_image else image.ensure()

    def _context(self, backing_info: Backing, image: str) -> RunContext:
        info = drivers.DRIVERS.get(self.spec.driver)
        return RunContext(run_id=self.run_id, driver_spec=str(self.spec), driver=self.spec.driver, fs=self.spec.fs,
                          docker_version=self.daemon.version(), kernel=os.uname().release,
                          attached=not self.daemon.ephemeral, mem_total_bytes=mem_total_bytes(),
                          driver_honours_direct_io=info.honours_direct_io if info else None,
                          loop_direct_io=backing_info.direct_io, backing=backing_info, image=image,
                          engine=self.spec.engine, image_store=info.store if info else "graphdriver",
                          containerd_version=self._containerd_version(),
                          driver_status=unionconfig.driver_status(self.daemon.info()),
                          overlay_params=unionconfig.overlay_params(),
                          backing_mount_options=unionconfig.backing_mount_options(backing_info.path)
                          if self.daemon.ephemeral else "")

    def _containerd_version(self) -> str:
        """The containerd the daemon runs on, as `docker version` reports it."""
        try:
            components = self.daemon.client.version().get("Components") or []
        except Exception:
            return ""
        return next((str(c.get("Version", "")) for c in components if c.get("Name") == "containerd"), "")

    def target(self, placement: str, image: str | None = None, lower_files: bool = False) -> Target:
        """A place to run fio: the host directory, or a new container of `image` (the bench image
        by default) on its top layer, a new volume or a bind mount; removed at teardown."""
        if placement in ("host", AA) and self.host_dir is not None:
            return HostTarget(self.host_dir, self.run_dir / "jobs", placement)
        if placement == AA:
            raise StorprofError("the host-aa control needs the host baseline: not with an attached daemon")
        with self.times.phase(CONTAINERS):
            target = ContainerTarget(self.daemon.client, image or self.context.image or "", placement, self.labels,
                                     name=f"{self.name_prefix}-{placement}", bind_source=self._bind_source(placement),
                                     lower_files=lower_files)
        self.callback(target.close)
        return target

    def _bind_source(self, placement: str) -> str | None:
        raise NotImplementedError

    def bind_dir(self, placement: str = "bind") -> str | None:
        """The host directory the bind placement mounts (None where there is none)."""
        return self._bind_source(placement)


_ROOTFS: list[RootfsPlan] = []


def bench_rootfs() -> RootfsPlan:
    """The offline bench image's files (the host's fio and helpers), worked out once per process."""
    from storprof.engine.image import plan_rootfs
    if not _ROOTFS:
        _ROOTFS.append(plan_rootfs())
    return _ROOTFS[0]


class EphemeralSession(Session):
    """A dockerd of storprof's own with one storage driver, its data root on the spec's backing
    filesystem (a loop device when that is not the work directory's), the host baseline beside it."""

    def __init__(self, spec: DriverSpec, index: int, workdir: Path, size_bytes: int, log_dir: Path,
                 storage_opts: list[str], **kw):
        super().__init__(**kw)
        self.spec = spec
        self.index = index
        self.workdir = workdir
        self.size_bytes = size_bytes
        self.log_dir = log_dir
        self.storage_opts = storage_opts

    def _setup(self) -> None:
        slug = self.spec.slug
        engine = find_engine(self.spec.engine, all_engines())
        info = self.spec.info
        layout = self.state.layout
        fs = backing.BackingFS(self.spec.fs, self.workdir, layout.backing_name(slug), self.size_bytes)
        self.state.record("backing", slug=slug, **fs.record())
        self.callback(fs.teardown)
        with self.times.phase(BACKING_FS):
            fs.setup()
        if self.spec.overlay:
            params = OverlayParams(self.spec.overlay)
            params.read_before()
            self.state.record("overlay", **params.record())
            self.callback(params.restore)
            params.apply()
            self.message(f"[{self.spec}] overlay module parameters {', '.join(params.names)} on for this session "
                         f"(host-wide for new overlay mounts; put back at its end)")
        with self.times.phase(DAEMON_START):
            daemon = EphemeralDaemon(str(self.spec), info.storage_driver, layout.data_root(slug),
                                     layout.runtime_dir(self.index), self.log_dir / f"{slug}.log",
                                     storage_opts=self.storage_opts, engine=engine,
                                     containerd_store=info.store == "containerd")
            self.state.record("daemon", slug=slug, index=self.index, **daemon.record())
            self.callback(daemon.stop)
            daemon.start()
        self.daemon = daemon
        actual = daemon.storage_driver()
        if actual != info.storage_driver:
            raise StorprofError(f"[{self.spec}] dockerd runs {actual}, not {info.storage_driver}")
        self.host_dir, self.data_root, self._bind_dir = fs.path / "host", fs.path / "docker", fs.path / "bind"
        where_is = Backing(path=str(fs.path), fs=self.spec.fs, is_loop=fs.is_loop, loop_device=fs.loop_device,
                           direct_io=fs.direct_io)
        self.context = self._context(where_is, self._import_bench_image())
        where = (f"loop {fs.loop_device} {'direct-io' if fs.direct_io else 'BUFFERED'}" if fs.is_loop
                 else "host filesystem")
        self.message(f"[{self.spec}] dockerd {self.context.docker_version} up on {fs.path} ({where})")

    def _bind_source(self, placement: str) -> str | None:
        if placement != "bind":
            return None
        if not self._bind_dir.is_dir():
            self._bind_dir.mkdir()
        return str(self._bind_dir)


class AttachedSession(Session):
    """A running daemon's current driver: the baseline runs in a container on a bind-mounted
    directory under its data root (the same backing filesystem), and only objects labelled with
    this run are made and removed."""

    daemon: AttachedDaemon

    def __init__(self, docker_host: str, **kw):
        super().__init__(**kw)
        self.docker_host = docker_host
        self.daemon = AttachedDaemon(docker_host)
        self.spec = attached_spec(self.daemon.info())
        self.work = f"{self.daemon.data_root()}/storprof-{self.run_id}"

    def _setup(self) -> None:
        self.callback(self.daemon.stop)
        self.state.record("attached", docker_host=self.docker_host, work=self.work)
        image = self._import_bench_image()
        self.callback(remove_attached_dirs, self.daemon, image, self.labels, self.work, self.run_id)
        self.context = self._context(Backing(path=self.work, fs=self.spec.fs), image)

    def _bind_source(self, placement: str) -> str | None:
        return f"{self.work}/{placement}" if placement in ("host", "bind") else None


def attached_spec(info: dict) -> DriverSpec:
    """The spec of a running daemon: its graphdriver and the backing filesystem it reports, or,
    with the containerd image store (driver-type io.containerd.snapshotter.v1), `c8d-` and the
    snapshotter, on the filesystem of its data root (which the snapshotter does not report)."""
    status = dict(info.get("DriverStatus") or [])
    driver = str(info.get("Driver", "unknown"))
    if str(status.get("driver-type", "")).startswith("io.containerd.snapshotter"):
        root = Path(str(info.get("DockerRootDir", "")))
        fs = host_fs_type(root) if root.is_absolute() and root.exists() else "unknown"
        return DriverSpec(f"{drivers.C8D}{driver}", fs)
    fs = str(status.get("Backing Filesystem", "unknown"))
    return DriverSpec(driver, {"extfs": "ext4"}.get(fs, fs))


def remove_attached_dirs(daemon: Daemon, image_ref: str, labels: dict, root: str, run_id: str) -> None:
    """Attach mode: the baseline's directories under the data root are removed from a container,
    since the daemon's host may not be this machine."""
    parent, name = root.rsplit("/", 1)
    try:
        containers.run(daemon.client, image_ref, command=["/bin/rm", "-rf", f"/parent/{name}"], remove=True,
                       labels=labels, volumes={parent: {"bind": "/parent", "mode": "rw"}},
                       name=f"storprof-{run_id}-cleanup")
    except Exception:
        pass
