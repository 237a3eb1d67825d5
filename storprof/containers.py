"""The one policy every container storprof makes runs under.

No network, no new privileges, no capabilities at all, a cap on processes, and the run's label
so removal finds exactly what this run made. Nothing storprof runs in a container needs a
capability: fio, sleep, mkdir, rm and timeout work in directories the container's root user
owns, files are put in by the daemon (put_archive, commit), and the union probes work from the
host through /proc/<pid>/root.
"""

from __future__ import annotations

LABEL = "storprof"
IDLE_COMMAND = ["/bin/sleep", "infinity"]
# fio's processes (numjobs is bounded by fiooptions.MAX_TOTAL_JOBS) and a few helpers.
PIDS_LIMIT = 512

POLICY = {
    "network_mode": "none",
    "security_opt": ["no-new-privileges"],
    "cap_drop": ["ALL"],
    "pids_limit": PIDS_LIMIT,
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
