"""Postgres: what a driver costs a real database, pgbench against PostgreSQL on each placement.

The server is Debian's PostgreSQL (postgresql-15 ships pgbench), in an image made offline from the
host's own binaries, share files and modules (as the fio image is), so the container and the host
run the very same server. Its data directory goes on the container's top layer, a volume or a bind
mount; the host baseline runs the same files in the sandbox host fio uses (bubblewrap: only those
files visible, every capability dropped, as an unprivileged uid in a user namespace), in a
directory on the same backing filesystem. pgbench runs beside the server (in the container, or in
the same sandbox) over a Unix socket: this isolates storage, not the network path (the article's
network experiment is `storprof net`'s). Each unit runs:

- TPC-B-like, pgbench's read-write mix, with fsync and synchronous_commit on: every commit waits
  for its WAL fsync, so this is what the driver's fsync path costs a database;
- select-only at a scale that fits the page cache: the article's case, where the data sits in
  memory and the storage driver should not matter;
- select-only cold (thorough sweeps): a larger scale, the server stopped cleanly, its files
  evicted from the page cache (posix_fadvise DONTNEED on each file, storprof's own only: no
  host-wide cache drop) and the server started again, so its reads start from the disk.

Rows are seconds, less is better, like every probe: the time per transaction (1/tps), and the
latency p50 and p99 from pgbench's per-transaction log. tps and the server settings are in params.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors
import requests

from storprof.engine.image import BenchImage, RootfsPlan
from storprof.errors import DaemonError, StorprofError, first_line
from storprof.harness.workload import Done, Sink, Unit
from storprof.host import safepath, sandbox
from storprof.host.limits import CEILING, confined
from storprof.host.proc import run
from storprof.results.records import ProbeRecord
from storprof.storage.fio.placements import ContainerTarget
from storprof.storage.pgbench import (
    COLD,
    DIRS,
    SETTINGS,
    STATS,
    UID,
    WORKLOAD,
    PostgresPlan,
    Server,
    find_server,
    parse_output,
    percentile,
    rootfs,
    row,
    sandbox_files,
    script,
)
from storprof.storage.probes.copyup import PROBE

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

# --- where it runs ----------------------------------------------------------------------------


class _Place:
    """One placement's server: runs the unit's script, says where its directory is on the host."""

    placement: str
    description: str

    def run(self, text: str, workdir: str, timeout: float) -> tuple[int, str]:
        raise NotImplementedError

    def host_path(self, workdir: str) -> Path:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _HostPlace(_Place):
    """The same files in the sandbox host fio runs in, as an unprivileged uid of a user namespace."""

    def __init__(self, plan: RootfsPlan, root: Path, made_dir: Path):
        self.placement = "host"
        self.description = f"host directory {root}"
        self.root = root
        self.files = sandbox_files(plan, made_dir)

    def run(self, text: str, workdir: str, timeout: float) -> tuple[int, str]:
        script_file = self.root / f"{Path(workdir).name}.sh"
        script_file.unlink(missing_ok=True)
        safepath.write_new(script_file, text, mode=0o644)
        argv = sandbox.files_argv(self.files, ["/bin/sh", f"{sandbox.INPUT_DIR}/unit.sh", workdir],
                                  writable=[self.root], inputs={"unit.sh": script_file}, cwd=self.root,
                                  uid=UID, env={"TZ": "UTC", "PATH": "/bin", "LC_ALL": "C"})
        try:
            with confined(CEILING) as (prefix, cgroup):
                done = run(["timeout", "--kill-after=5", f"{timeout:g}", *prefix, *argv], timeout=timeout + 60,
                           check=False, join_cgroup=cgroup)
        finally:
            script_file.unlink(missing_ok=True)
        return done.returncode, done.stdout + done.stderr

    def host_path(self, workdir: str) -> Path:
        return Path(workdir)


class _ContainerPlace(_Place):
    """A long-lived container of the server's image (fio's ContainerTarget: the same mounts and
    policy), running as the server's user."""

    def __init__(self, client, image: str, placement: str, labels: dict[str, str], name: str,
                 bind_source: str | None):
        self.client, self.placement, self.bind_source = client, placement, bind_source
        try:
            self.target: ContainerTarget | None = ContainerTarget(
                client, image, placement, labels, name, bind_source=bind_source, user=f"{UID}:{UID}",
                environment={"TZ": "UTC", "LC_ALL": "C"})
        except DaemonError as e:
            raise StorprofError(f"postgres: {e}") from None
        self.description = self.target.description
        self.container = self.target.container

    def run(self, text: str, workdir: str, timeout: float) -> tuple[int, str]:
        argv = ["/bin/timeout", "--kill-after=5", f"{timeout:g}", "/bin/sh", "-c", text, "sh", workdir]
        api = self.client.api
        saved, api.timeout = api.timeout, timeout + 60
        try:
            code, out = self.container.exec_run(argv)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            return -1, f"@@failed exec\ndocker exec failed: {first_line(e)}\n"
        finally:
            api.timeout = saved
        return (code if code is not None else -1), (out or b"").decode(errors="replace")

    def host_path(self, workdir: str) -> Path:
        """The unit's directory as the host sees it: the volume's mount point, the bind source, or
        the container's root through its init process (the daemon's own record of it)."""
        relative = os.path.relpath(workdir, DIRS[self.placement])
        if self.placement == "volume":
            assert self.target is not None and self.target.volume is not None
            self.target.volume.reload()
            return Path(self.target.volume.attrs["Mountpoint"]) / relative
        if self.placement == "bind":
            return Path(str(self.bind_source)) / relative
        self.container.reload()
        return Path(f"/proc/{int(self.container.attrs['State']['Pid'])}/root") / workdir.lstrip("/")

    def close(self) -> None:
        if self.target is not None:
            self.target.close()
            self.target = None
            self.container = None


def evict(directory: Path) -> int:
    """Drop this directory's files from the page cache (fsync, then POSIX_FADV_DONTNEED, each file
    opened without following links): the bytes it covered. Only storprof's own files: no host-wide
    drop_caches."""
    total = 0
    for base, _dirs, names in os.walk(directory, followlinks=False):
        for name in names:
            try:
                fd = os.open(os.path.join(base, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if not _is_regular(st.st_mode):
                    continue
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += st.st_size
            finally:
                os.close(fd)
    return total


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


# --- the workload -----------------------------------------------------------------------------


class Postgres:
    """Per repeat and group (cached, cold), pgbench on each placement, in a rotating order."""

    name = WORKLOAD

    def __init__(self, plan: PostgresPlan, repeat: int, sides: tuple[str, ...]):
        self.plan = plan
        self.repeat = repeat
        self.sides = tuple(p for p in sides if p == "host" or p in DIRS)
        self._places: dict[str, _Place] = {}
        self._image: BenchImage | None = None
        self._server: Server | None = None
        self._rootfs: RootfsPlan | None = None
        self._skip = ""

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(PROBE, r.context.driver_spec, r.identity, r.placement, r.repeat)
                for r in results.of(ProbeRecord) if r.workload == WORKLOAD}

    def _key(self, spec: str, group: str, placement: str, repeat: int) -> tuple:
        mode = self.plan.modes(group)[0]
        return (PROBE, spec, ProbeRecord.identity_of(**row(self.plan, mode, STATS[0])), placement, repeat)

    def _order(self, repeat: int) -> tuple[str, ...]:
        k = repeat % len(self.sides) if self.sides else 0
        return self.sides[k:] + self.sides[:k]

    def units(self, spec: str, done: Done) -> list[Unit]:
        units = [Unit(WORKLOAD, g, p, r, self._key(spec, g, p, r))
                 for r in range(self.repeat) for g in self.plan.groups() for p in self._order(r)]
        return [u for u in units if u.key not in done]

    def group_of(self, record) -> str | None:
        if isinstance(record, ProbeRecord) and record.workload == WORKLOAD:
            return "cold" if record.operation.startswith(COLD) else "cached"
        return None

    def extra_round(self, spec: str, group: str, repeat: int) -> list[Unit]:
        return [Unit(WORKLOAD, group, p, repeat, self._key(spec, group, p, repeat)) for p in self._order(repeat)]

    def prepare(self, session: Session, sink: Sink) -> None:
        p = self.plan
        try:
            self._server = find_server()
        except StorprofError as e:
            self._skip = str(e)
            sink.message(f"[{session.label}] postgres: skipped: {self._skip}")
            return
        cold = f", select-only cold at scale {p.cold_scale}" if p.cold_scale else ""
        sink.message(f"[{session.label}] postgres {self._server.version}: pgbench TPC-B-like (fsync on) and "
                     f"select-only at scale {p.scale}{cold}, {p.clients} clients, {p.seconds} s each, on "
                     f"{', '.join(self.sides)}")
        self._rootfs = rootfs(self._server)
        self._image = BenchImage(session.daemon.client, session.labels, repository="storprof-postgres")
        self._image.ensure(self._rootfs, session.scratch)

    def _place(self, session: Session, placement: str) -> _Place:
        if placement not in self._places:
            assert self._rootfs is not None and self._image is not None and self._image.ref
            if placement == "host":
                if session.host_dir is None:
                    raise StorprofError("the postgres host baseline needs the host directory")
                root = safepath.make_private_dir(session.host_dir.parent / f"{session.name_prefix}-postgres",
                                                 "postgres host directory")
                self._places[placement] = _HostPlace(self._rootfs, root, root)
            else:
                source = None
                if placement == "bind":
                    bind = session.bind_dir(placement)
                    source = str(safepath.make_private_dir(Path(str(bind)) / "postgres", "postgres bind directory"))
                    os.chown(source, UID, UID)
                self._places[placement] = _ContainerPlace(session.daemon.client, self._image.ref, placement,
                                                          session.labels, f"{session.name_prefix}-pg-{placement}",
                                                          source)
        return self._places[placement]

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        if self._skip:
            return f"skipped: {self._skip}"
        assert self._server is not None
        place = self._place(session, unit.placement)
        base = str(place.root) if isinstance(place, _HostPlace) else DIRS[unit.placement]
        workdir = f"{base}/pg-{unit.group}-r{unit.repeat}"
        modes = self.plan.modes(unit.group)
        timeout = 600 + len(modes) * (self.plan.seconds + 120) + 2 * self.plan.scale_of(unit.group)
        params = {"server": self._server.version, "clients": self.plan.clients, "threads": self.plan.threads,
                  "seconds": self.plan.seconds,
                  "settings": [f"{k}={v}" for k, v in SETTINGS.items()], "placement_detail": place.description}
        self._remove(place, workdir)
        self._mkdir(place, workdir)
        try:
            if unit.group == "cold":
                code, out = place.run(script(self._server, self.plan, ("init", "load"), modes[0]), workdir, timeout)
                runs, failure = parse_output(out)
                if not failure:
                    params["evicted_bytes"] = evict(place.host_path(workdir) / "data")
                    code, out = place.run(script(self._server, self.plan, ("run",), modes[0]), workdir, timeout)
                    runs, failure = parse_output(out)
            else:
                code, out = place.run(script(self._server, self.plan, ("init", "load", "run")), workdir, timeout)
                runs, failure = parse_output(out)
        finally:
            self._remove(place, workdir)
        got = {r.mode: r for r in runs}
        said = []
        for mode in modes:
            r = got.get(mode)
            fields: dict[str, Any] = {"context": session.context, "placement": unit.placement, "repeat": unit.repeat}
            if r is None or not r.ok:
                error = (r.message if r is not None else failure) or f"the script exited {code}"
                for stat in STATS:
                    sink.emit(ProbeRecord(**fields, seconds=0.0, status="failed", error=error,
                                          params=params, **row(self.plan, mode, stat)))
                said.append(f"{mode} FAILED: {error}")
                continue
            assert r.tps is not None
            run_params = {**params, "tps": r.tps, "latency_average_ms": r.latency_average_ms,
                          "transactions": r.transactions, "failed_transactions": r.failed_transactions}
            values = (1 / r.tps, percentile(r.latencies_us, 50) / 1e6, percentile(r.latencies_us, 99) / 1e6)
            for stat, seconds in zip(STATS, values):
                sink.emit(ProbeRecord(**fields, seconds=seconds, params=run_params, **row(self.plan, mode, stat)))
            said.append(f"{mode} {r.tps:.0f} tps, p99 {values[2] * 1e3:.2f} ms")
        return "; ".join(said)

    def _mkdir(self, place: _Place, workdir: str) -> None:
        if isinstance(place, _HostPlace):
            Path(workdir).mkdir(mode=0o700)
        else:
            place.run(f'/bin/mkdir -p "{workdir}"\necho "@@done"\n', workdir, 60)

    def _remove(self, place: _Place, workdir: str) -> None:
        if isinstance(place, _HostPlace):
            shutil.rmtree(workdir, ignore_errors=True)
        elif isinstance(place, _ContainerPlace) and place.container is not None:
            place.run(f'/bin/rm -rf "{workdir}"\necho "@@done"\n', workdir, 600)

    def cleanup(self, session: Session) -> None:
        for place in self._places.values():
            place.close()
            if isinstance(place, _HostPlace):
                shutil.rmtree(place.root, ignore_errors=True)
        self._places.clear()
        if self._image is not None:
            self._image.remove()
            self._image = None
