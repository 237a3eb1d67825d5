"""Docker daemons to measure: ephemeral ones storprof starts itself, or one it attaches to.

Modelled on moby's testutil/daemon: a daemon is an object with its own data root, exec root,
socket, pidfile and log, started, waited on until its API answers, and stopped cleanly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import BinaryIO

import docker
import docker.errors
import requests.exceptions

from storprof.engine.engines import Engine
from storprof.errors import DaemonError, EnvironmentProblem, first_line
from storprof.host import mounts, safepath
from storprof.host.proc import require

# What --docker-host takes (and what `storprof clean` accepts from an attached run's record): a unix
# socket path, a tcp/http(s) address, or ssh://[user@]host[:port]; no part may begin with '-', which
# ssh would read as an option.
DOCKER_HOST = re.compile(r"unix:///[A-Za-z0-9_./-]{1,200}|(?:tcp|http|https)://[A-Za-z0-9.\[\]][A-Za-z0-9.\[\]:-]{0,199}"
                         r"|ssh://(?:[A-Za-z0-9_.][A-Za-z0-9_.-]*@)?[A-Za-z0-9.][A-Za-z0-9.-]*(?::\d{1,5})?")

# A storage daemon touches no network: no bridge, and no iptables rules, IPv4 or IPv6 (Docker 27
# and later add ip6tables rules by default, even with --iptables=false).
ISOLATED_NETWORK = ("--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                    "--ip-forward=false", "--userland-proxy=false")

# The client waits this long for one API call; fio runs through exec and can take minutes.
API_TIMEOUT = 1800


def _client(base_url: str, timeout: float = API_TIMEOUT) -> docker.DockerClient:
    return docker.DockerClient(base_url=base_url, version="auto", timeout=timeout)


class Daemon:
    """What a sweep needs of a daemon, whoever started it."""

    spec_label: str
    client: docker.DockerClient
    ephemeral: bool

    @property
    def base_url(self) -> str:
        """Where its API listens (what a docker CLI's -H takes)."""
        raise NotImplementedError

    def info(self) -> dict:
        return self.client.info()

    def version(self) -> str:
        return self.client.version().get("Version", "unknown")

    def storage_driver(self) -> str:
        return self.info().get("Driver", "unknown")

    def data_root(self) -> str:
        return self.info().get("DockerRootDir", "")


class EphemeralDaemon(Daemon):
    """A dockerd of storprof's own with one storage driver; stop() leaves nothing behind.

    `data_root` lives on the spec's backing filesystem; socket, pidfile and exec root live in a
    private 0700 directory under /run/storprof so no other user can reach the daemon.
    """

    ephemeral = True
    # How often start() looks for the API until it answers: what a start's timing resolves to
    # (daemonstart times restarts of a few hundred ms, and polls more often).
    poll_seconds = 0.1

    def __init__(self, spec_label: str, storage_driver: str, data_root: Path, runtime_dir: Path,
                 log_path: Path, *, start_timeout: float = 60, stop_timeout: float = 20,
                 storage_opts: list[str] | None = None, engine: Engine | None = None,
                 containerd_store: bool = False, netns: str | None = None,
                 network_args: list[str] | None = None):
        self.spec_label = spec_label
        # A daemon of `storprof net` runs in a network namespace of storprof's own (netns.py) and
        # makes its bridge and NAT rules there; storage daemons make none at all.
        self.netns = netns
        self.network_args = network_args
        self.engine = engine
        self.containerd_store = containerd_store
        self.storage_driver_name = storage_driver
        self.data_root_path = Path(data_root)
        self.runtime_dir = Path(runtime_dir)
        self.log_path = Path(log_path)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.storage_opts = storage_opts or []
        self.socket = self.runtime_dir / "docker.sock"
        self.pidfile = self.runtime_dir / "docker.pid"
        self.exec_root = self.runtime_dir / "exec"
        self.config_file = self.runtime_dir / "daemon.json"
        self.process: subprocess.Popen | None = None
        self._client: docker.DockerClient | None = None
        self._log: BinaryIO | None = None
        self._started = False

    def record(self) -> dict:
        """What state.py writes down before start(): enough to find and stop it later."""
        return {"spec": self.spec_label, "driver": self.storage_driver_name, "data_root": str(self.data_root_path),
                "runtime_dir": str(self.runtime_dir), "log": str(self.log_path),
                "engine": self.engine.name if self.engine else "system",
                "dockerd": self.engine.dockerd if self.engine else "dockerd",
                # dockerd supervises a containerd of its own: root under the data root, state and
                # socket under the exec root; stop() and clean find it (and its shims) there.
                "containerd": {"root": str(self.data_root_path / "containerd"),
                               "state": str(self.exec_root / "containerd")},
                "image_store": "containerd" if self.containerd_store else "graphdriver",
                "netns": self.netns}

    def _recorded_pid(self) -> int | None:
        """dockerd's pid from its pidfile, only if that process is root's and this daemon (its argv
        holds our exact --exec-root)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        argv = _root_argv(pid)
        return pid if argv is not None and f"--exec-root={self.exec_root}" in argv else None

    def leftover(self) -> list[str]:
        """What of this daemon still exists: its process, helpers, mounts, runtime directory."""
        left = []
        pid = self._recorded_pid()
        if pid:
            left.append(f"dockerd pid {pid}")
        left += [f"process {p} ({cmd[:60]})" for p, cmd in _processes_naming(self.exec_root) if p != pid]
        left += [f"mount {m.mount_point}" for m in mounts.mounts_below(self.data_root_path)]
        left += [f"mount {m.mount_point}" for m in mounts.mounts_below(self.exec_root)]
        if self.runtime_dir.exists():
            left.append(f"directory {self.runtime_dir}")
        return left

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            raise DaemonError(f"[{self.spec_label}] daemon is not running")
        return self._client

    def argv(self, dockerd: str = "dockerd") -> list[str]:
        """The dockerd command line: isolated from the host's daemon, its config and networks."""
        argv = [dockerd,
                f"--storage-driver={self.storage_driver_name}",
                f"--data-root={self.data_root_path}",
                f"--exec-root={self.exec_root}",
                f"--host=unix://{self.socket}",
                f"--pidfile={self.pidfile}",
                f"--config-file={self.config_file}",
                # If a system containerd runs, dockerd shares it: own namespaces keep us apart.
                f"--containerd-namespace=storprof-{self.runtime_dir.name}",
                f"--containerd-plugins-namespace=storprof-{self.runtime_dir.name}-plugins",
                *(self.network_args if self.network_args is not None else ISOLATED_NETWORK)]
        argv += [f"--storage-opt={opt}" for opt in self.storage_opts]
        if self.netns:
            # nsenter, not `ip netns exec`: that one also remounts /sys, which hides the cgroup
            # filesystem dockerd needs ("Devices cgroup isn't mounted").
            argv = ["nsenter", f"--net=/run/netns/{self.netns}", "--", *argv]
        return argv

    def start(self) -> EphemeralDaemon:
        if os.geteuid() != 0:
            raise EnvironmentProblem("starting an ephemeral dockerd needs root (run storprof as root, "
                                     "or attach to a running daemon with --docker-host)")
        dockerd = self.engine.dockerd if self.engine else require("dockerd")
        safepath.make_private_dir(self.runtime_dir.parent, "the runtime directory")
        try:
            self.runtime_dir.mkdir(mode=0o700, exist_ok=False)
        except FileExistsError:
            raise DaemonError(f"[{self.spec_label}] {self.runtime_dir} already exists: another storprof "
                              "daemon uses it (or a killed one left it)") from None
        os.chmod(self.runtime_dir, 0o700)
        # A config of our own: the host's /etc/docker/daemon.json must not choose our driver. An
        # engine that has the containerd image store is told which store to use (Docker 29's
        # default is containerd's; a graphdriver spec must not get it).
        config = ({"features": {"containerd-snapshotter": self.containerd_store}}
                  if self.engine and self.engine.containerd_store else {})
        safepath.write_new(self.config_file, json.dumps(config) + "\n")
        # A restart (the daemon-start workload) keeps the data root it made; a first start makes it
        # new, so a directory someone else put there is never handed to dockerd.
        if not self._started:
            self.data_root_path.mkdir()
        self._started = True
        self.log_path.parent.mkdir(parents=True, exist_ok=True)     # in the checked results directory
        self._log = os.fdopen(safepath.open_append(self.log_path, 0o644), "ab")
        self.process = subprocess.Popen(self.argv(dockerd), stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True, env=self.engine.env() if self.engine else None)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        """Ping until the API answers; fail early (with the log tail) if dockerd exits."""
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer"
        assert self.process is not None, "start() first"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DaemonError(f"[{self.spec_label}] dockerd exited with code "
                                  f"{self.process.returncode} while starting: {self.log_tail()}")
            if self.socket.exists():
                try:
                    client = _client(self.base_url, timeout=5)
                    client.ping()
                    # A client with the daemon's own API version, and a long timeout for fio.
                    client.close()
                    self._client = _client(self.base_url)
                    return
                except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
                    last_error = first_line(e)
            time.sleep(self.poll_seconds)
        raise DaemonError(f"[{self.spec_label}] dockerd did not answer within "
                          f"{self.start_timeout:g}s ({last_error}): {self.log_tail()}")

    def log_tail(self, lines: int = 3) -> str:
        """The last meaningful lines of the daemon's log, for one-line error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        picked = [ln for ln in text.splitlines()
                  if "level=error" in ln or "level=fatal" in ln or "failed" in ln.lower()]
        picked = picked or text.splitlines()
        tail = [_log_message(ln) for ln in picked[-lines:]]
        return " / ".join(tail) + f" (log: {self.log_path})"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after stop_timeout; then unmount whatever it left mounted."""
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
            self._client = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        elif self.process is None:
            self._stop_recorded()
        # dockerd's containerd and shims live in their own groups; a killed dockerd leaves them,
        # and the containers' own processes outlive their shims.
        _kill_container_processes(self.data_root_path)
        _kill_processes_under(self.exec_root)
        mounts.unmount_below(self.data_root_path)
        mounts.unmount_below(self.exec_root)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


    def _stop_recorded(self) -> None:
        """A daemon of a killed run (adopted from its record): SIGTERM by pid, then SIGKILL."""
        pid = self._recorded_pid()
        if not pid:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


class AttachedDaemon(Daemon):
    """A daemon someone else runs: storprof only adds and removes its own labelled objects."""

    ephemeral = False

    def __init__(self, base_url: str):
        self._base_url = base_url
        try:
            self.client = _client(base_url)
            self.client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise DaemonError(f"cannot reach the Docker daemon at {base_url}: "
                              f"{first_line(e)}") from None
        self.spec_label = f"{self.storage_driver()}@attached"

    @property
    def base_url(self) -> str:
        return self._base_url

    def stop(self) -> None:
        self.client.close()


def _log_message(line: str) -> str:
    """dockerd logs logfmt lines; keep the msg= part when there is one."""
    if 'msg="' in line:
        msg = line.split('msg="', 1)[1]
        return msg.rsplit('"', 1)[0].replace('\\"', '"')
    return line.strip()


def _root_argv(pid: int) -> list[str] | None:
    """The argv of a process root runs (None for another user's, or a gone one)."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != 0:
            return None
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def names_path(argv: list[str], path: Path) -> bool:
    """An argv element is `path` or a path below it, alone or as a `--flag=` value: how dockerd names
    its exec root and how its containerd and shims name their config and socket under it. Never a
    substring of the whole command line."""
    root = str(path).rstrip("/")
    for arg in argv:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if value == root or value.startswith(root + "/"):
            return True
    return False


def _processes_naming(path: Path) -> list[tuple[int, str]]:
    """Root's processes whose argv names `path` (dockerd's containerd and shims name its exec root)."""
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        argv = _root_argv(int(pid_dir.name))
        if argv and names_path(argv, path):
            found.append((int(pid_dir.name), " ".join(argv)))
    return found


def _kill_processes_under(path: Path) -> None:
    """Kill root's processes whose argv names `path` (containerd, shims of this daemon)."""
    for pid, _ in _processes_naming(path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# A container's cgroup, as dockerd names it: .../docker/<id> (cgroupfs) or .../docker-<id>.scope
# (systemd), for either cgroup version.
_CONTAINER_CGROUP = re.compile(r"^\d+:[^:]*:(?:/.*)?/(?:docker/|docker-)([0-9a-f]{64})(?:\.scope)?(?:/.*)?$",
                               re.MULTILINE)


def container_cgroup_ids(cgroup_text: str) -> set[str]:
    """The container ids a /proc/<pid>/cgroup text names, by whole cgroup path components."""
    return set(_CONTAINER_CGROUP.findall(cgroup_text))


def _kill_container_processes(data_root: Path) -> None:
    """Kill processes in the cgroup of a container of this data root. The ids are the names of the
    data root's own `containers/` entries: a directory only dockerd writes, below the run's own
    directories (layout.py)."""
    try:
        ids = {d.name for d in (Path(data_root) / "containers").iterdir()
               if re.fullmatch(r"[0-9a-f]{64}", d.name) and safepath.is_dir_nofollow(d)}
    except OSError:
        return
    if not ids:
        return
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cgroup = (pid_dir / "cgroup").read_text()
        except OSError:
            continue
        if container_cgroup_ids(cgroup) & ids:
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
