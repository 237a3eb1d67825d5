"""What `storprof net` measures: the network paths into a container, the workloads, the repeats.

Each path is a way a client on the host reaches a server; the host baseline is the same server as
a plain process in the same namespace, reached on 127.0.0.1. Two daemons are needed because
docker-proxy is a daemon-wide choice (`--userland-proxy`): one namespace runs a daemon with it,
the other one without, each with its own host baseline.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from storprof.errors import UserError

# The two daemons: docker-proxy answers published ports on 127.0.0.1, or iptables DNAT does.
PROXY, NAT = "proxy", "nat"
NAMESPACES = (PROXY, NAT)
HOST = "host"


@dataclass(frozen=True)
class NetPath:
    """One way to reach the server: where it runs and which address the client dials."""

    name: str
    namespace: str          # PROXY or NAT: which daemon's namespace
    server: str             # "host" (a process), "host-network" or "bridge" (a container)
    address: str            # "loopback", "gateway" (the bridge's address on the host) or "container"
    published: bool         # through a published port (docker-proxy or DNAT), or straight to the server
    what: str               # what it isolates, for the tables


PATHS: dict[str, NetPath] = {p.name: p for p in (
    NetPath(HOST, NAT, "host", "loopback", False, "the baseline: server and client on the host, 127.0.0.1"),
    NetPath("host-network", NAT, "host-network", "loopback", False,
            "a container with --network host: the container itself, no network path of Docker's"),
    NetPath("proxy-loopback", PROXY, "bridge", "loopback", True,
            "a published port on 127.0.0.1 with userland-proxy=true: docker-proxy copies every byte"),
    NetPath("dnat-loopback", NAT, "bridge", "loopback", True,
            "a published port on 127.0.0.1 with userland-proxy=false: iptables DNAT, then the bridge and veth"),
    NetPath("dnat-bridge", NAT, "bridge", "gateway", True,
            "a published port on the host's bridge address: iptables DNAT, then the bridge and veth"),
    NetPath("bridge", NAT, "bridge", "container", False,
            "the container's own address over the bridge, nothing published: the bridge and veth alone"),
)}

@dataclass(frozen=True)
class NetWorkload:
    """One client tool run against one server, and the number it is judged by."""

    name: str
    tool: str
    metric: str             # the primary metric (a key of the parsed metrics)
    higher_is_better: bool
    unit: str
    what: str
    extra_metrics: tuple[str, ...] = ()
    server: str = ""        # the server it dials (a key of SERVER_PORTS), where that is not its tool's
    by_default: bool = True  # run when --workloads is not given


WORKLOADS: dict[str, NetWorkload] = {w.name: w for w in (
    NetWorkload("throughput", "iperf3", "bits_per_second", True, "bit/s",
                "bulk TCP throughput, one stream (iperf3)", ("retransmits",)),
    NetWorkload("latency", "sockperf", "p50_us", False, "µs",
                "request/response round trip on one kept-alive TCP connection, 64-byte messages (sockperf ping-pong)",
                ("p99_us", "p99_9_us")),
    NetWorkload("connect", "wrk", "requests_per_second", True, "req/s",
                "a new TCP connection per HTTP request (wrk with Connection: close, 4 connections, nginx)",
                ("lat_p50_us", "lat_p99_us")),
    NetWorkload("http", "wrk", "requests_per_second", True, "req/s",
                "HTTP requests on kept-alive connections (wrk, 8 connections, nginx, a 1 KiB page)",
                ("lat_p50_us", "lat_p99_us", "lat_p99_9_us")),
    # The article's experiment: a database reached over each path, its data cached, on the
    # container's top layer or on a volume (docs/network.md).
    NetWorkload("pgbench", "pgbench", "tps", True, "tps",
                "PostgreSQL select-only transactions over the path, data on the container's top layer "
                "(pgbench, 4 kept-alive connections)", ("latency_average_ms",), server="postgres", by_default=False),
    NetWorkload("pgbench-volume", "pgbench", "tps", True, "tps",
                "PostgreSQL select-only transactions over the path, data on a volume "
                "(pgbench, 4 kept-alive connections)", ("latency_average_ms",), server="postgres-volume",
                by_default=False),
    NetWorkload("pgbench-connect", "pgbench", "tps", True, "tps",
                "PostgreSQL select-only transactions, a new connection for each (pgbench -C), data on the "
                "container's top layer", ("latency_average_ms",), server="postgres", by_default=False),
)}
DEFAULT_WORKLOADS = [w.name for w in WORKLOADS.values() if w.by_default]
PGBENCH_WORKLOADS = tuple(w.name for w in WORKLOADS.values() if w.tool == "pgbench")
# pgbench's scale for the servers of the network experiment: small enough to sit in the page cache.
PGBENCH_SCALE = 10
PGBENCH_CLIENTS = 4

# Ports the servers listen on inside their network namespace (the container's, or storprof's for
# the host and host-network servers, which get the second set), and where each bridged path's own
# container is published on the host: one container per path, because connections of one path
# must not meet another path's in the connection tracking table (docs/network.md).
SERVER_PORTS = {"iperf3": 5201, "sockperf": 11111, "nginx": 8080, "postgres": 5432, "postgres-volume": 5442}
HOST_NETWORK_OFFSET = 1
PUBLISHED_OFFSET = {"proxy-loopback": 10000, "dnat-loopback": 10000, "dnat-bridge": 20000}
# How many connections wrk keeps open in each workload.
CONNECTIONS = {"connect": 4, "http": 8}


def server_port(tool: str, path: NetPath) -> int:
    """The port the path's server listens on (in its own network namespace)."""
    tool = "nginx" if tool == "wrk" else tool
    return SERVER_PORTS[tool] + (HOST_NETWORK_OFFSET if path.server == "host-network" else 0)


def dialled_port(tool: str, path: NetPath) -> int:
    """The port the client dials: the published one when the path goes through publishing."""
    return server_port(tool, path) + (PUBLISHED_OFFSET[path.name] if path.published else 0)


def published_on(path: NetPath) -> str:
    """The host address a path's port is published on: 127.0.0.1 for the loopback paths (as
    `-p 127.0.0.1:PORT:PORT`), every address for the bridge-address path (as `-p PORT:PORT`)."""
    return "127.0.0.1" if path.address == "loopback" else "0.0.0.0"


@dataclass(frozen=True)
class NetSettings:
    seconds: int            # each client run's measured seconds (iperf3 omits one more)
    repeat: int


QUICK = NetSettings(seconds=2, repeat=3)
THOROUGH = NetSettings(seconds=5, repeat=5)
MAX_SECONDS = 600
MAX_REPEAT = 100


@dataclass
class NetPlan:
    """Engines x paths x workloads x repeats, and the order the rounds run in."""

    engines: list[str]
    paths: list[str]
    workloads: list[str]
    settings: NetSettings
    run_id: str
    seed: int = field(default_factory=lambda: random.randrange(1 << 30))
    # As the sweep's: a target for the ratios' relative half-width, towards which the scheduler
    # spends extra rounds after the plan's repeats (None: none, as the presets run), and the
    # seconds the run may take in all (None: no limit on the extra rounds but their count).
    precision: float | None = None
    budget_seconds: float | None = None

    def __post_init__(self) -> None:
        self.paths = sorted(set(self.paths) | {HOST}, key=list(PATHS).index)

    @property
    def namespaces(self) -> list[str]:
        """The daemons the chosen paths need (the host baseline runs in each)."""
        return [ns for ns in NAMESPACES if any(PATHS[p].namespace == ns for p in self.paths if p != HOST)] or [NAT]

    def slots(self) -> list[tuple[str, str]]:
        """(path, namespace) pairs measured in a round: every path once, the baseline once per namespace."""
        out = []
        for name in self.paths:
            if name == HOST:
                out += [(HOST, ns) for ns in self.namespaces]
            else:
                out.append((name, PATHS[name].namespace))
        return out

    def rounds(self, engine: str) -> list[list[tuple[str, str, str]]]:
        """For each repeat, the (workload, path, namespace) units in a shuffled order: the paths of a
        workload run back to back, so slow drift in the machine falls on every path alike."""
        rng = random.Random(f"{self.seed}-{engine}")
        out = []
        for _ in range(self.settings.repeat):
            units = []
            for workload in self.workloads:
                slots = self.slots()
                rng.shuffle(slots)
                units += [(workload, path, ns) for path, ns in slots]
            out.append(units)
        return out

    def extra_round(self, engine: str, workload: str, repeat: int) -> list[tuple[str, str]]:
        """The (path, namespace) slots of one more round of a workload, in an order of its own."""
        slots = self.slots()
        random.Random(f"{self.seed}-{engine}-{workload}-{repeat}").shuffle(slots)
        return slots


def parse_choice(text: str | None, allowed: dict, what: str, default: list[str] | None = None) -> list[str]:
    """A comma-separated list of names, each one of `allowed` (one line naming the first that is
    not); none given: `default`, or every one allowed."""
    if text is None:
        return list(default if default is not None else allowed)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError(f"--{what} is empty; choose from {', '.join(allowed)}")
    for name in names:
        if name not in allowed:
            raise UserError(f"unknown {what[:-1] if what.endswith('s') else what} {name!r}; "
                            f"choose from {', '.join(allowed)}")
    return list(dict.fromkeys(names))
