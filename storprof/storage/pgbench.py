"""pgbench and the PostgreSQL it runs against: the server's files (for the image and the host
sandbox alike), the shell script a unit runs beside the server, and what pgbench's output and
per-transaction log say. Pure but for finding the server's files; the workloads that run it are
storage/postgres.py (a data directory per placement) and the network experiment.
"""

from __future__ import annotations

import glob
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from storprof.engine.image import RootfsPlan, linked_libraries
from storprof.errors import StorprofError, UserError
from storprof.host.proc import require

WORKLOAD = "postgres"      # the rows' workload field
PACKAGE = "postgresql"     # Debian's: the supported server (postgresql-15 on Debian 12), with pgbench
USER = "bench"
UID = 999                  # the server's user in the image and the sandbox (PostgreSQL refuses root)
NOBODY = 65534             # storprof net's servers run as nobody
# The pgbench runs, by the names their rows carry.
TPCB = "tpcb-like"
SELECT = "select-only"
COLD = "select-only cold"
MODES = (TPCB, SELECT, COLD)
STATS = ("time per transaction", "latency p50", "latency p99")
# The row the answer and the compact table ask about: a commit's cost, fsync included.
COMMITS = f"{TPCB}: {STATS[0]}"
# Where the data directory goes in the container, by placement.
DIRS = {"union": "/bench/union", "volume": "/bench/volume", "bind": "/bench/bind"}
# The server's settings, the same on every placement: the defaults that decide durability kept on.
SETTINGS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "wal_sync_method": "fdatasync",
            "shared_buffers": "128MB", "max_wal_size": "1GB", "jit": "off", "listen_addresses": "",
            "dynamic_shared_memory_type": "mmap"}
HELPERS = ("sh", "cat", "rm", "mkdir", "timeout", "sleep")


@dataclass(frozen=True)
class PostgresPlan:
    scale: int = 10              # pgbench's scale for the cached runs (about 15 MiB a unit)
    cold_scale: int | None = 50  # the scale read cold, from its evicted files (None: not run)
    clients: int = 4
    threads: int = 2
    seconds: int = 10            # each pgbench run's duration

    def validate(self) -> None:
        if not (1 <= self.scale <= 1000 and 1 <= self.clients <= 64 and 1 <= self.threads <= self.clients
                and 1 <= self.seconds <= 3600 and (self.cold_scale is None or 1 <= self.cold_scale <= 1000)):
            raise UserError("the postgres workload takes scales of 1-1000, 1-64 clients, 1 to clients threads "
                            "and runs of 1-3600 s")

    def bytes_needed(self) -> int:
        """Each placement's database (about 16 MiB a scale unit with its indexes) and its WAL."""
        return 4 * (16 << 20) * (self.scale + (self.cold_scale or 0)) + (2 << 30)

    def groups(self) -> tuple[str, ...]:
        return ("cached", "cold") if self.cold_scale else ("cached",)

    def modes(self, group: str) -> tuple[str, ...]:
        return (COLD,) if group == "cold" else (TPCB, SELECT)

    def scale_of(self, group: str) -> int:
        return self.cold_scale or 0 if group == "cold" else self.scale


def row(plan: PostgresPlan, mode: str, stat: str) -> dict:
    """The fields that name one row: a statistic of one pgbench run at its scale."""
    return {"workload": WORKLOAD, "operation": f"{mode}: {stat}", "scale": plan.scale_of(_group(mode))}


def _group(mode: str) -> str:
    return "cold" if mode == COLD else "cached"


# --- the server's files ---------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """Where the host's PostgreSQL is: its version and bin, share and module directories."""

    version: str
    bin: str
    share: str
    lib: str


def find_server() -> Server:
    """The newest PostgreSQL under /usr/lib/postgresql with a server and pgbench; StorprofError
    naming the package when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), key=lambda p: _numeric(p.split("/")[4]))
    for pgbench in reversed(found):
        version = pgbench.split("/")[4]
        bin_dir = os.path.dirname(pgbench)
        share = f"/usr/share/postgresql/{version}"
        if all(os.access(f"{bin_dir}/{b}", os.X_OK) for b in ("postgres", "initdb", "pg_ctl")) \
                and os.path.isfile(f"{share}/postgres.bki"):
            return Server(version, bin_dir, share, f"/usr/lib/postgresql/{version}/lib")
    raise StorprofError(f"no PostgreSQL server with pgbench (install Debian's {PACKAGE} package)")


def _numeric(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -1.0


def made_files() -> tuple[tuple[str, bytes], ...]:
    """The server's user: initdb and the server look their own user up."""
    return (("/etc/passwd", f"root:x:0:0::/:/bin/false\n{USER}:x:{UID}:{UID}::/tmp:/bin/false\n"
                            f"nobody:x:{NOBODY}:{NOBODY}::/tmp:/bin/false\n".encode()),
            ("/etc/group", f"root:x:0:\n{USER}:x:{UID}:\nnogroup:x:{NOBODY}:\n".encode()))


def sandbox_files(plan: RootfsPlan, made_dir: Path) -> list[tuple[str, str]]:
    """(host file, path inside) of an image's files for the host sandbox: its made files are
    written into `made_dir` (a directory of storprof's own) once."""
    files = list(plan.files)
    for inside, data in plan.made:
        path = made_dir / inside.strip("/").replace("/", "-")
        if not path.exists():
            path.write_bytes(data)
        files.append((str(path), inside))
    return files


def rootfs(server: Server) -> RootfsPlan:
    """The server, initdb, pg_ctl and pgbench with their libraries, share files and modules (not
    the JIT, which is off), UTC's zone file, and sh and the helpers the unit's script runs."""
    files: dict[str, str] = {}
    for binary in ("postgres", "initdb", "pg_ctl", "pgbench"):
        path = f"{server.bin}/{binary}"
        files[path] = path
    for helper in HELPERS:
        files[f"/bin/{helper}"] = str(Path(require(helper)).resolve())
    for directory, keep in ((server.share, lambda p: "/man/" not in p),
                            (server.lib, lambda p: p.endswith(".so") and "llvmjit" not in p)):
        for base, _dirs, names in os.walk(directory):
            for name in names:
                path = os.path.join(base, name)
                if keep(path) and os.path.isfile(path) and not os.path.islink(path):
                    files[path] = path
    for zone in ("/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Etc/UTC"):
        if os.path.isfile(zone):
            files[zone] = str(Path(zone).resolve())
    for inside, host in list(files.items()):
        if inside.startswith(server.bin) or inside.startswith("/bin/") or inside.endswith(".so"):
            for lib in linked_libraries(host):
                files.setdefault(lib, str(Path(lib).resolve()))
    return RootfsPlan(tuple(sorted((host, inside) for inside, host in files.items())),
                      dirs=("tmp", *[d.lstrip("/") for d in DIRS.values()]), made=made_files(),
                      open_dirs=tuple(d.lstrip("/") for d in DIRS.values()))


# --- the unit's script ------------------------------------------------------------------------


def _options(sock: str, port: int, listen: str) -> str:
    settings = {**SETTINGS, "unix_socket_directories": sock, "port": str(port), "listen_addresses": listen}
    return " ".join(f"-c {k}={v}" if v else f"-c {k}=''" for k, v in settings.items())


def script(server: Server, plan: PostgresPlan, steps: tuple[str, ...], mode: str | None = None,
           port: int = 5432, listen: str = "") -> str:
    """A POSIX shell script run with the unit's directory as $1: the `steps` among init, load,
    run and then stop, in that order. Its output is pgbench's, between @@ lines parse_output reads.
    With "serve" the server is left running instead (on `listen`'s TCP addresses, each client
    trusted: only in storprof's own network namespaces), and with "hold" the script then waits,
    so that a sandbox it is the first process of stays up."""
    b = server.bin
    group = _group(mode) if mode else "cached"
    # the socket in /tmp: a data directory's path can pass the 107 bytes a socket's path may have
    lines = ['W="$1"; D="$W/data"; S=/tmp/storprof-pg; /bin/mkdir -p "$S" "$W"',
             'fail() { echo "@@failed $1"; [ -f "$2" ] && /bin/cat "$2"; '
             f'{b}/pg_ctl -D "$D" -m immediate -s stop >/dev/null 2>&1; exit 3; }}']
    if "init" in steps:
        lines.append(f'{b}/initdb -D "$D" -U {USER} -A trust --no-sync -E UTF8 --locale=C >"$W/initdb.log" 2>&1 '
                     '|| fail initdb "$W/initdb.log"')
        if listen:
            lines.append('echo "host all all 0.0.0.0/0 trust" >>"$D/pg_hba.conf"')
    lines.append(f'{b}/pg_ctl -D "$D" -l "$W/server.log" -w -t 300 -s -o "{_options("$S", port, listen)}" start '
                 '>"$W/pg_ctl.log" 2>&1 || fail start "$W/server.log"')
    if "load" in steps:
        lines.append(f'{b}/pgbench -i -q -s {plan.scale_of(group)} -h "$S" -p {port} -U {USER} postgres '
                     '>"$W/load.log" 2>&1 || fail load "$W/load.log"')
    if "run" in steps:
        for m in plan.modes(group):
            flag = " -S" if m in (SELECT, COLD) else ""
            tag = m.replace(" ", "-")
            lines += [f'echo "@@run {m}"',
                      f'{b}/pgbench{flag} -h "$S" -p {port} -U {USER} -c {plan.clients} -j {plan.threads} '
                      f'-T {plan.seconds} -l --log-prefix="$W/tx-{tag}" postgres 2>&1; echo "@@exit $?"',
                      f'for f in "$W"/tx-{tag}.*; do [ -f "$f" ] && echo "@@log" && /bin/cat "$f" '
                      '&& /bin/rm -f "$f"; done']
    if "serve" not in steps:
        lines.append(f'{b}/pg_ctl -D "$D" -m fast -w -s stop >/dev/null 2>&1 || fail stop "$W/server.log"')
    lines.append('echo "@@done"')
    if "hold" in steps:
        lines.append("exec /bin/sleep infinity")
    return "\n".join(lines) + "\n"


def client_argv(server: Server, host: str, port: int, seconds: int, clients: int, connect: bool) -> list[str]:
    """pgbench's select-only run against a server over TCP (with `connect`, a new connection for
    each transaction, as pgbench -C), without the vacuum it would ask of the tables first."""
    return [f"{server.bin}/pgbench", "-n", "-S", "-h", host, "-p", str(port), "-U", USER, "-c", str(clients),
            "-j", str(max(1, clients // 2)), "-T", str(seconds), *(["-C"] if connect else []), "postgres"]


def client_files(server: Server) -> tuple[tuple[str, str], ...]:
    """(host file, path inside) of pgbench and its libraries: what the client's sandbox sees."""
    pgbench = f"{server.bin}/pgbench"
    return ((pgbench, pgbench), *((str(Path(lib).resolve()), lib) for lib in linked_libraries(pgbench)))


def client_metrics(text: str, exit_code: int) -> dict[str, float]:
    """Pure: a TCP pgbench run's tps and average latency; StorprofError with pgbench's words
    when it failed (an aborted run prints a tps too, for the part it ran: not taken)."""
    run = _run("client", text, [], exit_code)
    if exit_code != 0 or run.tps is None or run.latency_average_ms is None:
        raise StorprofError(run.message or f"pgbench exited {exit_code}")
    return {"tps": run.tps, "latency_average_ms": run.latency_average_ms,
            "transactions": float(run.transactions or 0), "failed_transactions": float(run.failed_transactions or 0)}


@dataclass(frozen=True)
class Run:
    """One pgbench run, as its output and per-transaction log told it."""

    mode: str
    exit_code: int
    tps: float | None
    latency_average_ms: float | None
    transactions: int | None
    failed_transactions: int | None
    latencies_us: tuple[int, ...]
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and bool(self.tps) and bool(self.latencies_us)


# -C (a connection per transaction) counts the connections in: "(including reconnection times)"
_TPS = re.compile(r"^tps = ([0-9.]+) \((?:without initial connection time|including reconnection times)\)", re.M)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms", re.M)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.M)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.M)


def parse_output(text: str) -> tuple[list[Run], str]:
    """Pure: the runs in a unit script's output, and the failure message if the script failed
    before or between them ('' when it reached its end)."""
    runs: list[Run] = []
    failure = ""
    mode: str | None = None
    out: list[str] = []
    logs: list[str] = []
    code: int | None = None
    section = ""
    detail: list[str] = []

    def close() -> None:
        if mode is not None:
            runs.append(_run(mode, "\n".join(out), logs, code))

    for line in text.splitlines():
        if line.startswith("@@run "):
            close()
            mode, out, logs, code, section = line[6:], [], [], None, "out"
        elif line.startswith("@@exit "):
            code, section = int(line.split()[1]), ""
        elif line == "@@log":
            section = "log"
        elif line.startswith("@@failed "):
            failure, section = f"{line.split()[1]} failed", "failure"
        elif line == "@@done":
            section = ""
        elif section == "out":
            out.append(line)
        elif section == "log":
            logs.append(line)
        elif section == "failure" and line.strip():
            detail.append(line.strip())
    close()
    if failure and detail:
        failure = f"{failure}: {_telling(detail)}"
    if not failure and "@@done" not in text:
        failure = "the server's script ended early" + (f": {_last(text)}" if _last(text) else "")
    return runs, failure


def _run(mode: str, out: str, logs: list[str], code: int | None) -> Run:
    def number(pattern: re.Pattern, cast):
        m = pattern.search(out)
        return cast(m.group(1)) if m else None

    latencies = []
    for line in logs:
        parts = line.split()
        if len(parts) >= 6 and parts[2].isdigit():
            latencies.append(int(parts[2]))
    message = ""
    if code != 0 or (not latencies and mode != "client"):
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        message = (_telling(lines) if lines else "") or f"pgbench exited {code}"
    return Run(mode, -1 if code is None else code, number(_TPS, float), number(_LATENCY, float),
               number(_PROCESSED, int), number(_FAILED, int), tuple(latencies), message)


def _telling(lines: list[str]) -> str:
    """The line of a server log or tool's output that says what went wrong: its first FATAL,
    PANIC or ERROR line, else its last line."""
    for line in lines:
        if re.search(r"\b(FATAL|PANIC|ERROR)\b|error:", line):
            return line
    return lines[-1]


def _last(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("@@")]
    return lines[-1] if lines else ""


def percentile(values: tuple[int, ...], q: float) -> float:
    """The q-th percentile (0-100), nearest rank: a latency some transaction actually had."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])
