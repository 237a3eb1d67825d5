"""Network namespaces of storprof's own, where `storprof net` runs its daemons, servers and clients.

The host's interfaces, routes and firewall rules are never touched: each namespace starts with
only a loopback, and everything a daemon makes in it (a bridge, veths, NAT rules, docker-proxy)
lives and dies with it. Deleting the namespace first kills every process still in it; the veths
inside go with it. Addresses are only ever those inside a namespace storprof made.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from storprof.errors import EnvironmentProblem
from storprof.host.proc import CommandFailed, run

NETNS_DIR = Path("/run/netns")
# Names storprof gives: its prefix, the run id, a role. Nothing else is ever deleted.
NAME = re.compile(r"storprof-[0-9a-f]{6,32}-[a-z][a-z0-9]{0,15}")


class NetNamespace:
    """One named network namespace (`ip netns`), with its loopback up."""

    def __init__(self, name: str):
        if not NAME.fullmatch(name):
            raise ValueError(f"not a storprof namespace name: {name!r}")
        self.name = name

    def record(self) -> dict:
        """What state.py writes down before create()."""
        return {"name": self.name}

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> NetNamespace:
        if os.geteuid() != 0:
            raise EnvironmentProblem("storprof net makes network namespaces: run it as root")
        try:
            run(["ip", "netns", "add", self.name], timeout=30)
            run(["ip", "-n", self.name, "link", "set", "lo", "up"], timeout=30)
        except CommandFailed as e:
            raise EnvironmentProblem(f"cannot make the network namespace {self.name}: {e}") from None
        return self

    def exec_argv(self, argv: list[str]) -> list[str]:
        """`argv` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def pids(self) -> list[int]:
        if not self.exists():
            return []
        out = run(["ip", "netns", "pids", self.name], timeout=30, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    def leftover(self) -> list[str]:
        if not self.exists():
            return []
        pids = self.pids()
        return [f"network namespace {self.name}" + (f" ({len(pids)} processes in it)" if pids else "")]

    def delete(self, grace: float = 5.0) -> None:
        """SIGTERM what runs inside, SIGKILL what stays, then delete the namespace (and its veths)."""
        if not self.exists():
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self.pids():
                time.sleep(0.1)
        run(["ip", "netns", "delete", self.name], timeout=30, check=False)

    def __repr__(self) -> str:
        return f"NetNamespace({self.name})"


def host_network_snapshot() -> dict[str, str]:
    """The host's network configuration as text, to check that a run left it as it was: links,
    addresses, routes (every table), rules, and the firewall (nft, and iptables-save for both
    families). Counters are left out: traffic elsewhere on the host moves them."""
    commands = {
        "ip link": ["ip", "-o", "link", "show"],
        "ip addr": ["ip", "-o", "addr", "show"],
        "ip route": ["ip", "route", "show", "table", "all"],
        "ip -6 route": ["ip", "-6", "route", "show", "table", "all"],
        "ip rule": ["ip", "rule", "show"],
        "nft": ["nft", "list", "ruleset"],
        "iptables-save": ["iptables-save"],
        "ip6tables-save": ["ip6tables-save"],
        "netns": ["ip", "netns", "list"],
    }
    snapshot = {}
    for name, argv in commands.items():
        try:
            text = run(argv, timeout=30, check=False).stdout
        except Exception as e:          # a missing tool: say so in the snapshot, equal on both sides
            text = f"({type(e).__name__})"
        snapshot[name] = _without_counters(text)
    return snapshot


_COUNTERS = re.compile(r"counter packets \d+ bytes \d+|\[\d+:\d+\]|^# (Generated|Completed) .*$", re.MULTILINE)


def _without_counters(text: str) -> str:
    return _COUNTERS.sub("", text)
