"""Timed file operations with a nanosecond clock, for the union probes (copy-up, deep stacks).

They run on the host, on a container's own root through /proc/<pid>/root: that is the very
mount the container sees (the same overlay, FUSE or snapshot), and timing in this process avoids
`docker exec`, whose start-up would bury a lookup of microseconds (docs/findings.md). Each
function times only the calls it names; what must be untimed (dropping cached pages) happens
between the timed spans.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from storprof.engine import containers
from storprof.errors import DaemonError, StorprofError, first_line

BLOCK = b"\xa5" * 4096
READ_CHUNK = 1 << 20


def drop_cached_pages(path: str | Path) -> None:
    """Write back, then drop the file's pages from the page cache (posix_fadvise DONTNEED), so
    the next read or copy comes from the disk. Opening read-only copies nothing up."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_lookup_caches() -> bool:
    """Drop the kernel's dentry and inode caches ('2' to drop_caches: reclaimable slab only, not
    the page cache), so the next lookup walks the filesystem as after a boot or a fresh mount. It
    changes no setting; True when it could (as root on this machine's kernel)."""
    try:
        os.sync()
        DROP_CACHES.write_text("2\n")
        return True
    except OSError:
        return False


def time_stats(paths: list[str]) -> float:
    """Seconds to stat() every path once, in order."""
    t0 = time.perf_counter_ns()
    for path in paths:
        os.stat(path)
    return (time.perf_counter_ns() - t0) / 1e9


@dataclass(frozen=True)
class WriteTiming:
    write_s: float   # open for writing + one 4 KiB pwrite: what a program waits before its write returns
    done_s: float    # the same plus fsync: until the write is on the disk


def time_write(path: str | Path, offset: int = 0) -> WriteTiming:
    """One 4 KiB buffered write into an existing file, timed from open() to pwrite() and fsync()."""
    t0 = time.perf_counter_ns()
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, BLOCK, offset)
        t1 = time.perf_counter_ns()
        os.fsync(fd)
        t2 = time.perf_counter_ns()
    finally:
        os.close(fd)
    return WriteTiming((t1 - t0) / 1e9, (t2 - t0) / 1e9)


@dataclass(frozen=True)
class LookupTiming:
    stat_s: float    # the first stat(): the path looked up through every layer
    open_s: float    # open() right after
    read_s: float    # reading the whole file, its pages first dropped from the cache
    bytes_read: int


def time_lookup_and_read(path: str | Path) -> LookupTiming:
    """First stat, then open, then a cold read of the whole file."""
    t0 = time.perf_counter_ns()
    os.stat(path)
    t1 = time.perf_counter_ns()
    fd = os.open(path, os.O_RDONLY)
    t2 = time.perf_counter_ns()
    try:
        os.fsync(fd)                                        # untimed: make the pages clean ...
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # ... and drop them
        total = 0
        t3 = time.perf_counter_ns()
        while True:
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                break
            total += len(chunk)
        t4 = time.perf_counter_ns()
    finally:
        os.close(fd)
    return LookupTiming((t1 - t0) / 1e9, (t2 - t1) / 1e9, (t4 - t3) / 1e9, total)


def container_root(container) -> Path:
    """The container's root as this host sees it, or an error saying why it cannot."""
    container.reload()
    pid = (container.attrs.get("State") or {}).get("Pid") or 0
    root = Path(f"/proc/{pid}/root")
    if not pid or not (root / "bin").exists():
        raise OSError(f"container {container.name} has no root reachable from this host "
                      "(is the daemon on another machine or in another PID namespace?)")
    return root


@contextlib.contextmanager
def fresh_container_root(client, image: str, name: str, labels: dict[str, str]):
    """A new container of `image` (no network, no new privileges), yielding its root as this
    host sees it; removed on exit. A fresh one per sample, so nothing is cached in its mount."""
    try:
        container = containers.run(client, image, labels=labels, name=name)
    except docker.errors.DockerException as e:
        raise DaemonError(f"could not start container {name}: {first_line(e)}") from None
    try:
        try:
            root = container_root(container)
        except OSError as e:
            raise StorprofError(str(e)) from None
        yield root
    finally:
        container.remove(force=True)
