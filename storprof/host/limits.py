"""Limits on the memory, processes and file sizes of a program storprof starts on the host.

The sandbox (sandbox.py) decides what fio can see; these decide how much it can take. A job that
got past the allowlist could still allocate all of the host's memory, fork without end or fill
the filesystem. Each fio run gets:

- memory: RLIMIT_AS per process, 1 GiB for fio itself plus twice the job's I/O buffers, at most
  what the allowlist lets a job ask for. It caps the process's own memory, not the page cache its
  I/O fills, so buffered measurements on the host stay what they were.
- file size: RLIMIT_FSIZE, the job's own files plus a margin. A larger write is ended by SIGXFSZ.
- processes: where systemd runs, a transient scope with TasksMax (and MemoryMax, the same total
  cap as a container's); else a pids cgroup of its own in the cgroup v1 pids hierarchy. RLIMIT_NPROC
  is set too, but the kernel does not apply it to root, so it only counts for other callers.

prlimit (util-linux) sets the rlimits for the whole tree, before bwrap starts; fio cannot raise
them, since the sandbox drops every capability. How each limit is applied is in docs/safety.md.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from storprof.host.proc import require
from storprof.storage.fio import options as fiooptions

FIO_OVERHEAD = 1 << 30        # fio's own address space: its shared memory pools, threads, libraries
FILE_MARGIN = 64 << 20        # beyond the job's own files: rounding, a layout's last block
PROCESS_MARGIN = 32           # fio's main process, its helper threads, bwrap


@dataclass(frozen=True)
class Limits:
    memory: int        # bytes of address space per process
    processes: int     # processes and threads in all
    file_size: int     # bytes one file may grow to

    @classmethod
    def for_job(cls, io_buffer_bytes: int, processes: int, file_bytes: int) -> Limits:
        """The limits of one fio run: `io_buffer_bytes` the largest bs x iodepth of one process,
        `processes` numjobs summed, `file_bytes` the files it makes; never above CEILING."""
        return cls(memory=min(FIO_OVERHEAD + 2 * max(io_buffer_bytes, 0), CEILING.memory),
                   processes=min(2 * max(processes, 1) + PROCESS_MARGIN, CEILING.processes),
                   file_size=min(max(file_bytes, 0) + FILE_MARGIN, CEILING.file_size))


# What the allowlist lets any job ask for: the limits of a run whose job storprof has not read.
CEILING = Limits(memory=FIO_OVERHEAD + fiooptions.MAX_IO_MEMORY,
                 processes=2 * fiooptions.MAX_TOTAL_JOBS + PROCESS_MARGIN,
                 file_size=2 * fiooptions.MAX_FILE_BYTES + FILE_MARGIN)


def systemd_runs() -> bool:
    """sd_booted(): systemd is the init system (its runtime directory exists)."""
    return Path("/run/systemd/system").is_dir()


def total_memory() -> int:
    """The host's RAM in bytes (MemTotal), or 0 when /proc/meminfo cannot say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def shared_memory_cap() -> int:
    """The memory all of a run's processes together may hold, page cache included: three quarters
    of the host's RAM (a container's mem_limit too). Not less, so that a data file fits in the
    cache as it would on the bare host, and host and containers are measured alike."""
    return max(total_memory() * 3 // 4, 2 << 30)


def prlimit_argv(limits: Limits) -> list[str]:
    """prlimit, as a prefix of the command it limits (soft and hard limit alike)."""
    return [require("prlimit"), f"--as={limits.memory}", f"--fsize={limits.file_size}",
            f"--nproc={limits.processes}", "--"]


def systemd_argv(limits: Limits) -> list[str]:
    """A transient scope under systemd with a cap on its tasks and their memory."""
    return [require("systemd-run"), "--scope", "--quiet", "--collect", "-p", f"TasksMax={limits.processes}",
            "-p", f"MemoryMax={shared_memory_cap()}", "--"]


_CGROUP_NAMES = itertools.count()


def pids_cgroup_parent() -> Path | None:
    """This process's own cgroup in the v1 pids hierarchy, if there is one root can write."""
    base = Path("/sys/fs/cgroup/pids")
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "pids" in controllers.split(","):
                parent = base / path.lstrip("/")
                return parent if os.access(parent / "cgroup.procs", os.W_OK) else None
    except (OSError, ValueError):
        pass
    return None


@contextlib.contextmanager
def confined(limits: Limits) -> Iterator[tuple[list[str], Path | None]]:
    """(argv prefix, cgroup.procs file the child joins or None) for one run under `limits`; a
    pids cgroup made here is removed afterwards."""
    if systemd_runs():
        yield systemd_argv(limits) + prlimit_argv(limits), None
        return
    cgroup = _make_pids_cgroup(limits.processes)
    try:
        yield prlimit_argv(limits), (cgroup / "cgroup.procs" if cgroup else None)
    finally:
        if cgroup is not None:
            _remove_cgroup(cgroup)


def _make_pids_cgroup(processes: int) -> Path | None:
    parent = pids_cgroup_parent()
    if parent is None:
        return None
    _remove_stale(parent)
    cgroup = parent / f"storprof-{os.getpid()}-{next(_CGROUP_NAMES)}"
    try:
        cgroup.mkdir(mode=0o755)          # exclusive: a name already there is not ours
    except OSError:
        return None
    try:
        (cgroup / "pids.max").write_text(str(int(processes)))
    except OSError:
        _remove_cgroup(cgroup)
        return None
    return cgroup


def _remove_stale(parent: Path) -> None:
    """Empty cgroups of storprof processes that are gone (killed before they could remove
    theirs); rmdir fails on a cgroup that still holds a process, so nothing live is touched."""
    for cgroup in parent.glob("storprof-*-*"):
        pid = cgroup.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                cgroup.rmdir()


def _remove_cgroup(cgroup: Path) -> None:
    """rmdir once its last process is gone (the sandbox's PID namespace ends with bwrap)."""
    for _ in range(50):
        try:
            cgroup.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
