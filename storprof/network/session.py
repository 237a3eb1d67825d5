"""One engine's network setup for `storprof net`: namespaces, daemons, servers, and where to dial.

For each namespace the plan needs (netplan.NAMESPACES), a NetSession makes the namespace, starts
a dockerd in it (with or without docker-proxy), imports the server image, starts the server
containers, and starts the same servers as plain processes for the host baseline. Everything is
recorded in the ownership record before it is made, and torn down in reverse.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from storprof.engine import containers
from storprof.engine.daemon import EphemeralDaemon
from storprof.engine.drivers import DriverSpec
from storprof.engine.engines import Engine
from storprof.engine.image import BenchImage, RootfsPlan, plan_rootfs
from storprof.errors import DaemonError, EnvironmentProblem, StorprofError, first_line
from storprof.harness.session import Session
from storprof.harness.state import RunState
from storprof.harness.timeaccount import DAEMON_START, IMAGE, TimeAccount
from storprof.host import sandbox
from storprof.host.mounts import host_fs_type
from storprof.host.proc import run
from storprof.host.sandbox import bwrap_argv
from storprof.network import tools as nettools
from storprof.network.namespaces import NetNamespace
from storprof.network.plan import (
    HOST,
    PATHS,
    PGBENCH_SCALE,
    PGBENCH_WORKLOADS,
    PROXY,
    SERVER_PORTS,
    NetPath,
    NetPlan,
    dialled_port,
    published_on,
    server_port,
)
from storprof.results import mem_total_bytes
from storprof.results.records import RunContext
from storprof.storage import pgbench

REPOSITORY = "storprof-net"
# The storage driver of every daemon `storprof net` starts (its records' context names it).
NET_DRIVER = "overlay2"
SERVERS = ("iperf3", "sockperf", "nginx")
# The bridge every daemon of `storprof net` makes inside its own namespace.
BRIDGE_CIDR = "172.17.0.1/16"
SERVER_WAIT = 20.0
PAGE = "/srv/www"
PAGE_BYTES = 1024
NOBODY = 65534


def installed_servers() -> tuple[str, ...]:
    """The servers this host has (a missing one skips its workloads, not the run)."""
    return tuple(t for t in SERVERS if shutil.which(t))


@functools.cache
def net_rootfs(servers: tuple[str, ...], postgres: pgbench.Server | None = None) -> RootfsPlan:
    """The server image: the host's own iperf3, sockperf and nginx (the same binaries as the host
    baseline's), a 1 KiB page and nginx configurations for both server port sets; with `postgres`,
    the PostgreSQL files the storage half's image has too."""
    confs = tuple((f"/etc/storprof/nginx-{port}.conf", nettools.nginx_conf(port, PAGE, "/tmp").encode())
                  for port in (SERVER_PORTS["nginx"], SERVER_PORTS["nginx"] + 1))
    made = ((f"{PAGE}/index.html", nettools.index_page(PAGE_BYTES)), *confs)
    plan = plan_rootfs((*servers, "sleep", "timeout"), dirs=("tmp", PAGE.lstrip("/")), made=made)
    if postgres is None:
        return plan
    pg = pgbench.rootfs(postgres)
    inside = {i for _, i in plan.files}
    return RootfsPlan(tuple(sorted({*plan.files, *((h, i) for h, i in pg.files if i not in inside)})),
                      dirs=tuple(dict.fromkeys((*plan.dirs, *pg.dirs))), made=(*plan.made, *pg.made),
                      open_dirs=pg.open_dirs)


# The article's experiment's two servers in each place: data on the top layer, or on a volume.
PG_SERVERS = {"postgres": "/bench/union/pg", "postgres-volume": "/bench/volume/pg"}
PG_WAIT = 300.0


def network_args(userland_proxy: bool, engine: Engine | None) -> list[str]:
    """dockerd's network options in a namespace of its own: a bridge and iptables NAT (IPv4 only),
    docker-proxy on or off."""
    args = ["--iptables=true", "--ip6tables=false", "--ip-forward=true", "--ip-masq=true",
            f"--bip={BRIDGE_CIDR}", f"--userland-proxy={'true' if userland_proxy else 'false'}"]
    if userland_proxy:
        proxy = _docker_proxy(engine)
        if proxy is None:
            raise EnvironmentProblem("docker-proxy is not installed (package docker.io)")
        args.append(f"--userland-proxy-path={proxy}")
    return args


def _docker_proxy(engine: Engine | None) -> str | None:
    for d in (engine.bin_dirs if engine else ()):
        if (Path(d) / "docker-proxy").is_file():
            return str(Path(d) / "docker-proxy")
    return shutil.which("docker-proxy")


@dataclass(frozen=True)
class Endpoint:
    """Where a client dials one path's servers: in which namespace, at which address."""

    path: NetPath
    netns: NetNamespace
    address: str

    def target(self, tool: str) -> tuple[str, int]:
        return self.address, dialled_port(tool, self.path)


def net_context(run_id: str, engine: Engine, fs: str, docker_version: str = "") -> RunContext:
    """What every record of one engine's net session carries: its daemons run overlay2 on the work
    directory's filesystem (the spec the storage half would name them by), the engine, the host."""
    spec = DriverSpec(NET_DRIVER, fs, engine.name)
    return RunContext(run_id=run_id, driver_spec=str(spec), driver=NET_DRIVER, fs=fs, docker_version=docker_version,
                      kernel=os.uname().release, mem_total_bytes=mem_total_bytes(), engine=engine.name)


class NetSession(Session):
    """One engine: a namespace and a daemon per plan namespace, the servers, the endpoints. The
    harness Session's lifecycle (one ExitStack, teardown timed, newest first) and RunContext."""

    def __init__(self, engine: Engine, plan: NetPlan, workdir: Path, run_dir: Path, state: RunState,
                 message: Callable[[str], None], index: int, times: TimeAccount | None = None):
        super().__init__(run_id=plan.run_id, run_dir=run_dir, state=state, times=times or TimeAccount(),
                         message=message, scratch=workdir)
        self.engine = engine
        self.plan = plan
        self.workdir = workdir
        self.index = index
        self.spec = DriverSpec(NET_DRIVER, host_fs_type(workdir), engine.name)
        self.context = net_context(plan.run_id, engine, self.spec.fs)
        self.namespaces: dict[str, NetNamespace] = {}
        self.daemons: dict[str, EphemeralDaemon] = {}
        self.endpoints: dict[tuple[str, str], Endpoint] = {}
        self.skipped: dict[str, str] = {}     # namespace -> why its daemon or servers could not run
        self.servers = installed_servers()
        self.postgres: pgbench.Server | None = None   # the article's experiment's server, when it runs
        self.postgres_skip = ""
        self.pg_client_files: list[tuple[str, str]] = []
        if set(plan.workloads) & set(PGBENCH_WORKLOADS):
            try:
                self.postgres = pgbench.find_server()
            except StorprofError as e:
                self.postgres_skip = str(e)
        self.published = (*self.servers, *(PG_SERVERS if self.postgres else ()))

    @property
    def label(self) -> str:
        return f"net@{self.engine.name}"

    @property
    def docker_version(self) -> str:
        return self.context.docker_version

    def _setup(self) -> None:
        for role in self.plan.namespaces:
            try:
                self._setup_namespace(role)
            except (StorprofError, docker.errors.DockerException) as e:
                # One daemon that cannot run (no netfilter module for its NAT, say) skips its
                # paths, with the reason; the other namespace's paths still run.
                self.skipped[role] = f"the {role} namespace could not be set up: {first_line(e)}"
                self.message(f"[{self.label} {role}] skipped: {first_line(e)}")
        if len(self.skipped) == len(self.plan.namespaces):
            raise StorprofError("; ".join(self.skipped.values()))

    def _bind_source(self, placement: str) -> str | None:
        return None

    def _setup_namespace(self, role: str) -> None:
        layout = self.state.layout
        ns = NetNamespace(layout.netns(role, self.index))
        self.state.record("netns", role=role, index=self.index, **ns.record())
        self.callback(ns.delete)
        ns.create()
        self.namespaces[role] = ns
        spec = f"[{self.label} {role}]"
        root = layout.net_root(role, self.index)
        self.state.record("dir", what="net", role=role, index=self.index, path=str(root))
        self.callback(shutil.rmtree, root, True)
        root.mkdir(mode=0o700)
        daemon = EphemeralDaemon(f"{self.label} {role}", NET_DRIVER, root / "docker",
                                 layout.net_runtime_dir(role, self.index),
                                 self.run_dir / "logs" / f"net-{self.engine.name}-{role}.log",
                                 engine=self.engine,
                                 netns=ns.name, network_args=network_args(role == PROXY, self.engine))
        self.state.record("daemon", role=role, index=self.index, **daemon.record())
        self.callback(daemon.stop)
        with self.times.phase(DAEMON_START):
            daemon.start()
        self.daemons[role] = daemon
        if not self.daemons.keys() - {role}:        # the first daemon up: the session's daemon and context
            self.daemon = daemon
            self.context = net_context(self.run_id, self.engine, self.spec.fs, daemon.version())
        image = BenchImage(daemon.client, self.labels, repository=REPOSITORY)
        self.callback(image.remove)
        with self.times.phase(IMAGE):
            ref = image.ensure(net_rootfs(self.servers, self.postgres), self.workdir)
        self.message(f"{spec} dockerd {daemon.version()} up in network namespace {ns.name}"
                     f" (userland-proxy={'true' if role == PROXY else 'false'})")
        paths = [PATHS[p] for p in self.plan.paths if PATHS[p].namespace == role or p == HOST]
        if any(p.server == "host" for p in paths):
            self._host_servers(ns, root / "host")
            self.endpoints[(HOST, role)] = Endpoint(PATHS[HOST], ns, "127.0.0.1")
        if any(p.server == "host-network" for p in paths):
            self._container_servers(daemon, ref, "host-network", PATHS["host-network"])
            self.endpoints[("host-network", role)] = Endpoint(PATHS["host-network"], ns, "127.0.0.1")
        for p in paths:
            if p.server == "bridge":
                settings = self._container_servers(daemon, ref, "bridge", p).attrs["NetworkSettings"]
                address = {"loopback": "127.0.0.1", "gateway": settings["Gateway"],
                           "container": settings["IPAddress"]}[p.address]
                self.endpoints[(p.name, role)] = Endpoint(p, ns, address)

    def _container_servers(self, daemon: EphemeralDaemon, image: str, network: str, path: NetPath):
        name = f"storprof-{self.plan.run_id}-{path.name}-{self.index}"
        ports = None
        if path.published:
            ports = {f"{server_port(t, path)}/tcp": (published_on(path), dialled_port(t, path)) for t in self.published}
        volumes = {}
        if self.postgres:
            volume = daemon.client.volumes.create(name=f"{name}-vol", labels=self.labels)
            self.callback(_remove, volume)
            volumes[volume.name] = {"bind": "/bench/volume", "mode": "rw"}
        container = containers.serve(daemon.client, image, labels=self.labels,
                                     network_mode="host" if network == "host-network" else network,
                                     ports=ports, name=name, volumes=volumes)
        self.callback(_remove, container)
        if self.postgres:
            self._container_postgres(container, path)
        for tool in self.servers:
            port = server_port(tool, path)
            container.exec_run(server_argv(tool, port, f"/bin/{tool}", f"/etc/storprof/nginx-{port}.conf"),
                               detach=True, user=containers.SERVER_USER)
        container.reload()
        pid = container.attrs["State"]["Pid"]
        wanted = {server_port(t, path) for t in self.published}
        _wait_listening(["nsenter", f"--net=/proc/{pid}/ns/net"], wanted, f"[{self.label}] {network} container")
        return container

    def _host_servers(self, ns: NetNamespace, scratch: Path) -> None:
        """The baseline's servers: the same binaries as plain processes in the namespace, each in
        bubblewrap as nobody, seeing only its binary, the page and its scratch directory."""
        scratch.mkdir(parents=True, exist_ok=True)
        www = scratch / "www"
        www.mkdir(exist_ok=True)
        (www / "index.html").write_bytes(nettools.index_page(PAGE_BYTES))
        port = SERVER_PORTS["nginx"]
        conf = scratch / "nginx.conf"
        conf.write_text(nettools.nginx_conf(port, str(www), str(scratch)))
        for tool in self.servers:
            args = server_argv(tool, SERVER_PORTS[tool], tool, str(conf))[1:]
            argv = ns.exec_argv(bwrap_argv(tool, args, [scratch], {}, scratch, share_net=True, uid=NOBODY,
                                                private_tmp=True))
            log = open(scratch / f"{tool}.log", "ab")  # noqa: SIM115 - the server writes to it until it stops
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            log.close()
            self.callback(_stop, proc)
        _wait_listening(ns.exec_argv([]), {SERVER_PORTS[t] for t in self.servers},
                        f"[{self.label}] host servers in {ns.name}")
        if self.postgres:
            self._host_postgres(ns, scratch)

    def _container_postgres(self, container, path: NetPath) -> None:
        """The two PostgreSQL servers of a path's container, loaded and left running, as nobody."""
        assert self.postgres is not None
        plan = pgbench.PostgresPlan(scale=PGBENCH_SCALE, cold_scale=None)
        for name, where in PG_SERVERS.items():
            text = pgbench.script(self.postgres, plan, ("init", "load", "serve"), port=server_port(name, path),
                                  listen="*")
            code, out = container.exec_run(["/bin/sh", "-c", text, "sh", where], user=containers.SERVER_USER)
            _, failure = pgbench.parse_output((out or b"").decode(errors="replace"))
            if code != 0 or failure:
                raise DaemonError(f"[{self.label}] PostgreSQL in the {path.name} container: {failure or code}")

    def _host_postgres(self, ns: NetNamespace, scratch: Path) -> None:
        """The baseline's PostgreSQL servers: the same files in the host sandbox, as nobody, in the
        namespace on 127.0.0.1, each data directory in the scratch directory."""
        assert self.postgres is not None
        plan = pgbench.PostgresPlan(scale=PGBENCH_SCALE, cold_scale=None)
        files = pgbench.sandbox_files(net_rootfs(self.servers, self.postgres), scratch)
        # the client sees pgbench and the same users, from this namespace's scratch (removed with it)
        users = [(h, i) for h, i in files if i.startswith("/etc/")]
        self.pg_client_files = [*pgbench.client_files(self.postgres), *users]
        logs = []
        for name in PG_SERVERS:
            unit = scratch / f"{name}.sh"
            unit.write_text(pgbench.script(self.postgres, plan, ("init", "load", "serve", "hold"),
                                           port=SERVER_PORTS[name], listen="127.0.0.1"))
            argv = ns.exec_argv(sandbox.files_argv(files, ["/bin/sh", f"{sandbox.INPUT_DIR}/unit.sh",
                                                           str(scratch / name)],
                                                   writable=[scratch], inputs={"unit.sh": unit}, cwd=scratch,
                                                   uid=NOBODY, env={"TZ": "UTC", "PATH": "/bin", "LC_ALL": "C"},
                                                   share_net=True))
            log = scratch / f"{name}.log"
            with open(log, "ab") as out:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            self.callback(_stop, proc)
            logs.append((name, log, proc))
        deadline = time.monotonic() + PG_WAIT
        for name, log, proc in logs:
            while "@@done" not in log.read_text(errors="replace"):
                _, failure = pgbench.parse_output(log.read_text(errors="replace"))
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise DaemonError(f"[{self.label}] the host's PostgreSQL ({name}) did not come up: "
                                      f"{failure or 'timed out'}")
                time.sleep(0.2)

    def pgbench_argv(self, endpoint: Endpoint, argv: list[str]) -> list[str]:
        """pgbench in the endpoint's namespace, in bubblewrap as nobody, seeing only its files."""
        return endpoint.netns.exec_argv(sandbox.files_argv(self.pg_client_files, argv, writable=[], inputs={},
                                                           cwd=Path("/"), uid=NOBODY,
                                                           env={"PATH": "/bin", "LC_ALL": "C"}, share_net=True))

    def client_argv(self, endpoint: Endpoint, argv: list[str], inputs: dict[str, Path]) -> list[str]:
        """A client tool run in the endpoint's namespace, in bubblewrap as nobody, seeing only its
        binary and its inputs."""
        return endpoint.netns.exec_argv(bwrap_argv(argv[0], argv[1:], [], inputs, Path("/"), share_net=True,
                                                   uid=NOBODY, private_tmp=True))


def server_argv(tool: str, port: int, binary: str, nginx_conf: str) -> list[str]:
    if tool == "iperf3":
        return nettools.iperf3_server_argv(port, binary=binary)
    if tool == "sockperf":
        return nettools.sockperf_server_argv(port, binary=binary)
    return nettools.nginx_argv(nginx_conf, binary=binary)


def listening_ports(ss_output: str) -> set[int]:
    """Pure: the ports in `ss -Hltn` output (local address is the 4th column)."""
    ports = set()
    for line in ss_output.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[3].rsplit(":", 1)[-1].isdigit():
            ports.add(int(cols[3].rsplit(":", 1)[-1]))
    return ports


def _wait_listening(prefix: list[str], ports: set[int], what: str) -> None:
    """Until every port listens (read from the namespace's socket table: no traffic is sent)."""
    deadline = time.monotonic() + SERVER_WAIT
    seen: set[int] = set()
    while time.monotonic() < deadline:
        seen = listening_ports(run([*prefix, "ss", "-Hltn"], timeout=30, check=False).stdout)
        if ports <= seen:
            return
        time.sleep(0.1)
    raise DaemonError(f"{what}: ports {sorted(ports - seen)} did not start listening within {SERVER_WAIT:g}s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _remove(container) -> None:
    try:
        container.remove(force=True)
    except Exception:          # the daemon's stop and the namespace's deletion follow, and kill it
        pass
