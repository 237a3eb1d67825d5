"""How much of the host's run-to-run noise is storprof's own doing? The quick sweep's fio jobs
(randwrite-4k, fsync-write-4k, randread-4k at the quick preset's size and runtime) run back to
back on an ext4 image loop-mounted with direct I/O, as a spec's backing filesystem is, under
several conditions interleaved run by run (A B C A B C ...), so the machine's drift and the other
users' load hit each condition alike. Prints, per job and condition, the spread of consecutive
runs' log ratio (what a sweep's pair sees) and the sd of log IOPS beside the targets, plus what
the disk did: writeback waiting before a run and sectors the disk wrote during it. Reports, does
not gate (exit 0; 2 for bad input). Plain fio, no daemon. Run as root:

    .venv/bin/python benchmarks/noise.py            # about 5 minutes here
    .venv/bin/python benchmarks/noise.py --smoke    # seconds: checks the benchmark still runs
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from storprof.errors import StorprofError
from storprof.harness.plan import QUICK
from storprof.host import backing, safepath, writeback
from storprof.host.cpu import fio_cpus
from storprof.storage.fio.cells import data_file_name
from storprof.storage.fio.job import load_job, precondition_job
from storprof.storage.fio.result import parse_fio_output

JOBS = ("randwrite-4k", "fsync-write-4k", "randread-4k")
WORKDIR = Path("/var/lib/storprof-noise")
# Spread of consecutive runs' log ratio the sweep should reach (issue 29: 13.5% randwrite, 8.5%
# fsync, 3.9% randread today).
TARGETS = {"randwrite-4k": 0.08, "fsync-write-4k": 0.06, "randread-4k": 0.039}


@dataclass(frozen=True)
class Condition:
    name: str
    settle: bool
    size: str
    ramp: float = 0.0
    dirty_mib: int = 0      # buffered MiB written just before the run, as a copy-up probe leaves



CONDITIONS = (Condition("today", False, QUICK.size or "64m"),
              Condition("settle", True, QUICK.size or "64m"),
              Condition("1g", False, "1g"),
              Condition("settle+ramp", True, QUICK.size or "64m", ramp=0.2))
# After a neighbour that leaves dirty pages (a union probe's copy-up writes through the cache).
AFTER_DIRTY = (Condition("dirty", False, QUICK.size or "64m", dirty_mib=128),
               Condition("dirty+settle", True, QUICK.size or "64m", dirty_mib=128))
LOG_MSEC = 50     # fio's own IOPS log: one figure per 50 ms of each run


def _psi_us(resource: str) -> int:
    """Microseconds some task stalled on `resource` ("cpu", "io") since boot (0 without PSI)."""
    try:
        line = Path(f"/proc/pressure/{resource}").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0
    return int(line.rsplit("total=", 1)[-1])


def _log_bins(prefix: str) -> list[float]:
    """IOPS per LOG_MSEC bin from fio's iops log(s) `prefix`*_iops*.log, removed after reading."""
    bins: list[float] = []
    for path in sorted(Path(prefix).parent.glob(Path(prefix).name + "_iops*.log")):
        for line in path.read_text().splitlines():
            fields = [f.strip() for f in line.split(",")]
            if len(fields) >= 2 and fields[1].isdigit():
                bins.append(float(fields[1]))
        path.unlink()
    return bins


def _stat(dev: Path) -> writeback.BlockStat:
    return writeback.parse_block_stat((dev / "stat").read_text())


def _leave_dirty(path: Path, mib: int) -> None:
    """Rewrite `path` with `mib` MiB through the page cache and leave it dirty (no fsync)."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block)


def run_once(job_name: str, cond: Condition, directory: Path, devices: list[Path], runtime: float,
             cpus: str | None) -> dict:
    """One fio run under `cond`, pinned as the sweep pins it; its IOPS and what the disk did."""
    job = load_job(job_name).with_overrides(size=cond.size, runtime=runtime, ramp_time=cond.ramp,
                                            cpus_allowed=cpus)
    if cond.dirty_mib:
        _leave_dirty(directory / "neighbour.dat", cond.dirty_mib)
    settled = writeback.settle(directory) if cond.settle else None
    mem = writeback.parse_meminfo(writeback.MEMINFO.read_text())
    before = [_stat(d) for d in devices]
    logs = str(directory.parent / "iops")
    text = job.render(directory=str(directory), filename=data_file_name(job))
    text += f"write_iops_log={logs}\nlog_avg_msec={LOG_MSEC}\n"       # into the job's own section
    with tempfile.NamedTemporaryFile("w", suffix=".fio", dir=directory.parent, delete=False) as f:
        f.write(text)
    psi = (_psi_us("cpu"), _psi_us("io"))
    try:
        done = subprocess.run(["fio", "--output-format=json", f.name], capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(f.name)
    after = [_stat(d) for d in devices]
    stalled = (_psi_us("cpu") - psi[0], _psi_us("io") - psi[1])
    bins = _log_bins(logs)
    metrics = parse_fio_output(done.stdout, done.stderr).metrics()
    return {"job": job_name, "condition": cond.name, "iops": metrics["total_iops"],
            "settle_s": settled.seconds if settled else 0.0, "settled": settled.settled if settled else None,
            "dirty_before": mem.get("Dirty", 0), "writeback_before": mem.get("Writeback", 0),
            "in_flight_before": before[-1].in_flight, "cpu_stall_ms": stalled[0] / 1000,
            "io_stall_ms": stalled[1] / 1000, "bins": bins,
            "written_mib": [(a.write_sectors - b.write_sectors) / 2048 for a, b in zip(after, before)]}


def spreads(values: list[float]) -> tuple[float, float, float]:
    """(sd of the log ratio of consecutive runs, the same from the median absolute deviation (a
    burst of someone else's load moves it less), sd of log IOPS)."""
    logs = [math.log(v) for v in values if v > 0]
    steps = [b - a for a, b in itertools.pairwise(logs)]
    if len(steps) < 2:
        return math.nan, math.nan, math.nan
    mid = statistics.median(steps)
    robust = 1.4826 * statistics.median(abs(s - mid) for s in steps)
    return statistics.stdev(steps), robust, statistics.stdev(logs)


def measure(root: Path, rounds: int, runtime: float, conditions: tuple[Condition, ...], progress) -> list[dict]:
    fs = backing.BackingFS("ext4", root, "noise-ext4", 5 << 30)
    fs.is_loop = True               # as a spec's backing filesystem: an image on a loop device
    runs = []
    with fs:
        directory = fs.path / "fio"
        directory.mkdir()
        devices, _ = writeback.devices_under(directory)
        cpus = fio_cpus("auto")         # the sweep's default --cpus
        progress(f"ext4 image on {fs.loop_device} (direct I/O {fs.direct_io}); devices "
                 f"{', '.join(d.name for d in devices)}; fio on CPUs {cpus or 'any'}")
        for size in sorted({c.size for c in conditions}):
            for name in JOBS:
                job = load_job(name).with_overrides(size=size, runtime=runtime, ramp_time=0)
                pre = precondition_job(size).render(directory=str(directory), filename=data_file_name(job))
                subprocess.run(["fio", "--output-format=json", "-"], input=pre, capture_output=True, text=True,
                               timeout=600, check=True)
        for r in range(rounds):
            for j, name in enumerate(JOBS):
                k = (r + j) % len(conditions)
                for cond in conditions[k:] + conditions[:k]:
                    runs.append(run_once(name, cond, directory, devices, runtime, cpus))
            progress(f"  round {r + 1}/{rounds}")
        for p in list(directory.iterdir()):
            p.unlink()
        directory.rmdir()
    left = fs.leftover()
    if left:
        raise StorprofError(f"left behind: {', '.join(left)}")
    return runs


def table(runs: list[dict], conditions: tuple[Condition, ...]) -> list[list]:
    rows = []
    for name in JOBS:
        for cond in conditions:
            mine = [r for r in runs if r["job"] == name and r["condition"] == cond.name]
            pair, robust, sd = spreads([r["iops"] for r in mine])
            settle = statistics.mean(r["settle_s"] for r in mine)
            extra = statistics.median(r["written_mib"][-1] for r in mine)
            rows.append([name, cond.name, len(mine), f"{statistics.median(r['iops'] for r in mine):,.0f}",
                         f"{pair * 100:.1f}%", f"{robust * 100:.1f}%", f"{sd * 100:.1f}%",
                         f"≤{TARGETS[name] * 100:.1f}%",
                         f"{statistics.median(r['dirty_before'] + r['writeback_before'] for r in mine) / 2**20:.1f}",
                         f"{extra:.0f}", f"{settle * 1000:.0f} ms",
                         f"{statistics.median(r['cpu_stall_ms'] for r in mine):.0f} ms"])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=WORKDIR)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--runtime", type=float, default=QUICK.runtime or 0.5)
    ap.add_argument("--json", type=Path, help="also write every run's figures here")
    ap.add_argument("--after-dirty", action="store_true",
                    help="instead: each run after 128 MiB of buffered writes, with and without a settle")
    ap.add_argument("--conditions", help="a comma-separated subset of: " + ", ".join(c.name for c in CONDITIONS))
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    conditions = AFTER_DIRTY if args.after_dirty else CONDITIONS
    if args.conditions:
        named = {c.name: c for c in CONDITIONS}
        unknown = [n for n in args.conditions.split(",") if n not in named]
        if unknown:
            print(f"noise: unknown condition(s) {', '.join(unknown)}", file=sys.stderr)
            return 2
        conditions = tuple(named[n] for n in args.conditions.split(","))
    if args.smoke:
        args.rounds, args.runtime = 3, 0.2
        conditions = tuple(Condition(c.name, c.settle, "16m", dirty_mib=c.dirty_mib // 16) for c in conditions[:2])
    if os.geteuid() != 0:
        print("noise: run as root (it attaches a loop device)", file=sys.stderr)
        return 2
    if args.rounds < 3:
        print("noise: --rounds must be at least 3", file=sys.stderr)
        return 2

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    made = not os.path.lexists(args.workdir)
    try:
        root = safepath.make_private_dir(args.workdir, "noise benchmark directory")
        try:
            runs = measure(root, args.rounds, args.runtime, conditions, progress)
        finally:
            if made:
                os.rmdir(root)
    except (StorprofError, subprocess.CalledProcessError, OSError) as e:
        print(f"noise: {e}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    print(tabulate(table(runs, conditions), headers=[
        "job", "condition", "n", "median IOPS", "consecutive log-ratio sd", "same, from MAD", "sd log IOPS",
        "target", "dirty+writeback before (MiB)", "disk MiB written in run", "settle", "CPU stall in run"],
        disable_numparse=True))
    print(f"\nconditions interleaved run by run, {args.rounds} rounds, {args.runtime:g} s runs; "
          f"'today' is the quick sweep's {QUICK.size} files without a settle; wall time "
          f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
