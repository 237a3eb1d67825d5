"""Let the disk go quiet before a timed fio run: syncfs, then wait for writeback and the queue.

Back-to-back short runs hand each other their writeback: a run's dirty pages (a buffered fsync
job's, the journal's, a loop image's) are written while the next run measures, and the disk's
queue may still hold the previous run's requests. settle() writes the target filesystem's dirty
data (syncfs of that filesystem only; for a loop image without direct I/O also the filesystem
holding the image), then polls /proc/meminfo and the block devices' in-flight counts until writeback is idle
or a deadline passes. Measured in docs/noise.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MEMINFO = Path("/proc/meminfo")
SYS_DEV_BLOCK = Path("/sys/dev/block")

# Quiet enough: pages under writeback and dirty pages (all of the machine's: other processes'
# count too, so the bar is not zero) and no request in flight on the devices, POLLS_QUIET polls
# in a row. TIMEOUT bounds the wait on a machine someone else keeps busy.
WRITEBACK_MAX = 1 << 20
DIRTY_MAX = 32 << 20
POLL_SECONDS = 0.01
POLLS_QUIET = 2
TIMEOUT = 3.0


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes by field name ("Dirty", "Writeback", ...)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or not fields or not fields[0].isdigit():
            continue
        scale = 1024 if fields[1:] == ["kB"] else 1
        out[name.strip()] = int(fields[0]) * scale
    return out


@dataclass(frozen=True)
class BlockStat:
    """The fields of /sys/block/<dev>/stat storprof reads (Documentation/block/stat.rst)."""

    writes: int             # write requests completed
    write_sectors: int      # 512-byte sectors written
    in_flight: int          # requests issued to the driver and not yet completed
    flushes: int | None     # flush requests completed (kernels from 5.5)


def parse_block_stat(text: str) -> BlockStat:
    """One line of 11, 15 or 17 numbers; ValueError if it is not one."""
    fields = [int(f) for f in text.split()]
    if len(fields) < 11:
        raise ValueError(f"a block stat line has at least 11 fields, not {len(fields)}")
    return BlockStat(writes=fields[4], write_sectors=fields[6], in_flight=fields[8],
                     flushes=fields[15] if len(fields) >= 17 else None)


def _open_dir(path: str | Path) -> int:
    """An fd of a directory, never through a symlink at its last component."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


_libc = None


def syncfs(path: str | Path) -> None:
    """syncfs(2) of the filesystem holding directory `path` (os.sync() where libc lacks it)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = _open_dir(path)
    try:
        if not hasattr(_libc, "syncfs"):
            os.sync()
        elif _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def _sys_block_dir(dev: int) -> Path | None:
    """/sys/dev/block/MAJ:MIN resolved (a partition's own directory has a stat file too)."""
    link = SYS_DEV_BLOCK / f"{os.major(dev)}:{os.minor(dev)}"
    try:
        return link.resolve(strict=True)
    except OSError:
        return None


def devices_under(path: str | Path) -> tuple[list[Path], list[Path]]:
    """(sysfs directories of the block devices to watch under directory `path`, directories to
    syncfs): the filesystem's own device and directory. A loop device without direct I/O adds
    the device and filesystem holding its backing file (its writes sit dirty in the host's page
    cache); one with direct I/O adds nothing, since its requests stay in flight on the loop device
    until the disk below completes them, and the disk below is shared with every other user."""
    fd = _open_dir(path)
    try:
        dev = os.fstat(fd).st_dev
    finally:
        os.close(fd)
    devices: list[Path] = []
    dirs = [Path(path)]
    block = _sys_block_dir(dev)
    if block is None:
        return devices, dirs
    devices.append(block)
    try:
        backing = Path((block / "loop" / "backing_file").read_text().strip())
        direct = (block / "loop" / "dio").read_text().strip() == "1"
    except OSError:
        return devices, dirs
    if not direct and backing.is_absolute():
        try:
            below = _sys_block_dir(os.lstat(backing).st_dev)
        except OSError:
            below = None
        if below is not None:
            devices.append(below)
            dirs.append(backing.parent)
    return devices, dirs


@dataclass(frozen=True)
class Quiet:
    """What the machine looked like when a poll found it quiet (or the deadline passed)."""

    seconds: float
    settled: bool
    dirty: int
    writeback: int
    in_flight: int


def _read_meminfo() -> dict[str, int]:
    return parse_meminfo(MEMINFO.read_text())


def _read_in_flight(devices: list[Path]) -> int:
    total = 0
    for d in devices:
        try:
            total += parse_block_stat((d / "stat").read_text()).in_flight
        except (OSError, ValueError):
            pass
    return total


def wait_quiet(devices: list[Path], timeout: float = TIMEOUT, *, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep,
               meminfo: Callable[[], dict[str, int]] = _read_meminfo,
               in_flight: Callable[[list[Path]], int] = _read_in_flight, started: float | None = None) -> Quiet:
    """Poll until writeback, dirty pages and the devices' queues are quiet POLLS_QUIET times in a
    row, or until `timeout` seconds after `started` (default: now)."""
    start = clock() if started is None else started
    quiet = 0
    while True:
        mem = meminfo()
        dirty, writeback, flying = mem.get("Dirty", 0), mem.get("Writeback", 0), in_flight(devices)
        quiet = quiet + 1 if writeback <= WRITEBACK_MAX and dirty <= DIRTY_MAX and flying == 0 else 0
        now = clock()
        if quiet >= POLLS_QUIET or now - start >= timeout:
            return Quiet(round(now - start, 4), quiet >= POLLS_QUIET, dirty, writeback, flying)
        sleep(POLL_SECONDS)


def settle(path: str | Path, timeout: float = TIMEOUT, clock: Callable[[], float] = time.monotonic) -> Quiet:
    """syncfs the filesystem of host directory `path` (and, below a buffered loop device, the
    filesystem holding its image), then wait_quiet(). `path` is a directory storprof made on the
    host, never one a container names."""
    start = clock()
    devices, dirs = devices_under(path)
    for d in dirs:
        syncfs(d)
    return wait_quiet(devices, timeout, clock=clock, started=start)
