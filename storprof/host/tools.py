"""The external tools storprof runs: the Debian package that provides each, and what needs it.

The one list: `proc.require` names a missing tool's package from it, `storprof setup` installs
from it and `storprof setup --check` says what a missing entry costs. A workload that runs a new
tool (PostgreSQL, podman, openssh, ...) adds its entry here, and set-up provides it from then on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tool:
    """One binary storprof looks up on PATH, and where it comes from."""

    name: str                       # the binary, as proc.require looks it up
    package: str                    # the Debian/Ubuntu package that provides it
    needed_by: str                  # what cannot run without it
    services: tuple[str, ...] = ()  # system services the package would start (set-up keeps them stopped)
    tests_only: bool = False        # only the test suite runs it (`storprof setup --tests`)
    by_setup: bool = True           # False: set-up leaves it to the user (it needs more than a package)
    where: str = ""                 # a glob it is found by instead of PATH (a server outside PATH)


TOOLS: tuple[Tool, ...] = (
    Tool("fio", "fio", "every fio job, on the host and in containers"),
    Tool("dockerd", "docker.io", "every spec on the system's Docker engine (and runc, which every engine uses)"),
    Tool("mkfs.ext4", "e2fsprogs", "specs on a loop-backed ext4"),
    Tool("mkfs.xfs", "xfsprogs", "specs on a loop-backed xfs"),
    Tool("mkfs.btrfs", "btrfs-progs", "specs on a loop-backed btrfs"),
    Tool("mkfs.erofs", "erofs-utils", "containerd's erofs snapshotter"),
    Tool("losetup", "mount", "loop-backed filesystems"),
    Tool("mount", "mount", "loop-backed filesystems"),
    Tool("umount", "mount", "loop-backed filesystems"),
    Tool("fuse-overlayfs", "fuse-overlayfs", "the fuse-overlayfs graphdriver"),
    Tool("bwrap", "bubblewrap", "the sandbox host fio and storprof net's tools run in"),
    Tool("timeout", "coreutils", "time limits on the commands storprof starts"),
    Tool("prlimit", "util-linux", "the memory and file-size limits of host fio (limits.py)"),
    Tool("postgres", "postgresql", "the postgres workload and storprof net's pgbench workloads (Debian's "
         "PostgreSQL server, initdb and pgbench)", services=("postgresql",),
         where="/usr/lib/postgresql/*/bin/postgres"),
    # storprof net: its namespaces, and the servers and clients it runs in them
    Tool("ip", "iproute2", "storprof net (its network namespaces)"),
    Tool("ss", "iproute2", "storprof net (its network namespaces)"),
    Tool("iptables", "iptables", "storprof net (Docker's NAT in its namespaces)"),
    Tool("nsenter", "util-linux", "storprof net (its network namespaces)"),
    Tool("iperf3", "iperf3", "storprof net's throughput workload", services=("iperf3",)),
    Tool("sockperf", "sockperf", "storprof net's latency workload"),
    Tool("wrk", "wrk", "storprof net's connect and http workloads"),
    Tool("nginx", "nginx-light", "storprof net's connect and http workloads (the server)", services=("nginx",)),
    # the test suite
    Tool("chromium", "chromium", "the report's headless-browser test", tests_only=True),
    # not set-up's: contrib, a kernel module built with DKMS, and a pool storprof does not create
    Tool("zfs", "zfsutils-linux", "zfs specs (on an existing zpool)", by_setup=False),
)

# tool -> package, for the messages that name what to install.
PACKAGES = {t.name: t.package for t in TOOLS}


def setup_tools(tests: bool = False) -> tuple[Tool, ...]:
    """The tools `storprof setup` provides (with `tests`, the test suite's too)."""
    return tuple(t for t in TOOLS if t.by_setup and (tests or not t.tests_only))
