"""The one policy every container storprof makes runs under.

No network, no new privileges, no capabilities at all, caps on processes, memory and file size,
and the run's label so removal finds exactly what this run made. The memory cap is the same total
host fio runs under where systemd gives it one (limits.shared_memory_cap): three quarters of the
host's RAM, page cache included, so that a container's data file is cached as the host's is and
the placements are compared alike. One container serves every job of its placement, so its file
size cap is the largest file any job may make (limits.CEILING); host fio gets its job's own.

Nothing storprof runs in a container needs a capability: fio, sleep, mkdir, rm and timeout work
in directories the container's root user owns, files are put in by the daemon (put_archive,
commit), and the union probes work from the host through /proc/<pid>/root.
"""

from __future__ import annotations

from storprof.host.limits import CEILING, shared_memory_cap

LABEL = "storprof"
IDLE_COMMAND = ["/bin/sleep", "infinity"]
# fio's processes (numjobs is bounded by fiooptions.MAX_TOTAL_JOBS) and a few helpers.
PIDS_LIMIT = 512

MEMORY_LIMIT = shared_memory_cap()
FILE_SIZE_LIMIT = CEILING.file_size

POLICY = {
    "network_mode": "none",
    "security_opt": ["no-new-privileges"],
    "cap_drop": ["ALL"],
    "pids_limit": PIDS_LIMIT,
    "mem_limit": MEMORY_LIMIT,
    "memswap_limit": MEMORY_LIMIT,          # the same: no swap on top
    "ulimits": [{"name": "fsize", "soft": FILE_SIZE_LIMIT, "hard": FILE_SIZE_LIMIT}],
}


def labels_for(run_id: str) -> dict[str, str]:
    return {LABEL: run_id}


def create(client, image: str, *, labels: dict[str, str], command: list[str] | None = None, **extra):
    """A new container under the policy (not started); `extra` adds mounts or a name, never
    loosens the policy."""
    _refuse_overrides(extra)
    return client.containers.create(image, command=command or IDLE_COMMAND, labels=labels, **POLICY, **extra)


def run(client, image: str, *, labels: dict[str, str], command: list[str] | None = None, **extra):
    """A container under the policy, started (detached unless `extra` says remove=True)."""
    _refuse_overrides(extra)
    if not extra.get("remove"):
        extra.setdefault("detach", True)
    return client.containers.run(image, command=command or IDLE_COMMAND, labels=labels, **POLICY, **extra)


def _refuse_overrides(extra: dict) -> None:
    clash = set(extra) & (set(POLICY) | {"privileged", "cap_add", "devices", "pid_mode", "ipc_mode", "userns_mode"})
    if clash:
        raise ValueError(f"container options {sorted(clash)} would loosen storprof's container policy")


# The one loosening, for `storprof net` alone: a server container has a network (the bridge of a
# daemon in storprof's own namespace, or that namespace itself with network_mode "host") and may
# publish ports; it runs as nobody, with no capabilities and no new privileges all the same.
SERVER_NETWORKS = ("bridge", "host")
SERVER_USER = "65534:65534"


def serve(client, image: str, *, labels: dict[str, str], network_mode: str, ports: dict | None = None, **extra):
    """A started server container on `network_mode`, idle until its servers are exec'd."""
    if network_mode not in SERVER_NETWORKS:
        raise ValueError(f"a server container's network is one of {SERVER_NETWORKS}, not {network_mode!r}")
    _refuse_overrides(extra)
    if "ports" in extra or "user" in extra:
        raise ValueError("a server container's ports and user are serve()'s own arguments")
    policy = {**POLICY, "network_mode": network_mode}
    return client.containers.run(image, command=IDLE_COMMAND, labels=labels, detach=True, user=SERVER_USER,
                                 ports=ports or None, **policy, **extra)
