"""Fewer, longer fio runs or more, shorter ones? For the same seconds of fio time per cell, how
wide is the 95% interval of a paired ratio (bind ÷ host: the physical truth is 1.00) on this
machine, and how much wall time does each choice cost? Every configuration is measured in the same
session, interleaved trial by trial, so drift of the machine favours none. Prints each figure with
what it is compared against; reports, does not gate (exit 0; 2 for bad input). Run as root:

    .venv/bin/python benchmarks/repeats.py            # about 10 minutes here
    .venv/bin/python benchmarks/repeats.py --smoke    # under a minute: checks the benchmark still runs
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from storprof import results
from storprof.engine.drivers import DriverSpec
from storprof.errors import StorprofError
from storprof.harness.plan import SweepPlan
from storprof.harness.sweep import Sweep
from storprof.host import backing
from storprof.host.cpu import fio_cpus
from storprof.host.mounts import host_fs_type
from storprof.stats.intervals import paired_ratios, ratio_interval
from storprof.storage.fio.cells import FioCells, data_file_name
from storprof.storage.fio.job import load_job
from storprof.storage.fio.result import parse_fio_output

JOBS = ["randread-4k", "randwrite-4k", "seqread-1m"]
RUNTIMES = (0.5, 1.0, 2.0, 4.0)


def value(target, job, runtime: float, cpus: str | None) -> tuple[float, float]:
    """(the job's primary number, wall seconds) of one run of `runtime` seconds."""
    forced = job.with_overrides(runtime=runtime, ramp_time=0, cpus_allowed=cpus)
    start = time.monotonic()
    done = target.run_fio(forced.render(target.fio_dir, data_file_name(job)), job.name, 600)
    wall = time.monotonic() - start
    metrics = parse_fio_output(done.stdout, done.stderr).metrics()
    return (metrics["total_bw_bytes"] if job.primary_metric == "bw" else metrics["total_iops"]), wall


def trial(targets, job, runtime: float, budget: float, cpus: str | None) -> tuple[float, float]:
    """Spend `budget` seconds of fio time per placement as runs of `runtime`, host and bind in
    alternating order; returns (the ratio interval's relative half-width, wall seconds)."""
    host, bind, wall = [], [], 0.0
    for r in range(max(2, round(budget / runtime))):
        for placement in (("host", "bind") if r % 2 == 0 else ("bind", "host")):
            v, w = value(targets[placement], job, runtime, cpus)
            (host if placement == "host" else bind).append(v)
            wall += w
    interval = ratio_interval(paired_ratios(bind, host))
    assert interval is not None
    return interval.half_width, wall


def measure(workdir: Path, budget: float, trials: int, size: str, runtimes: tuple[float, ...], progress) -> list[list]:
    spec = DriverSpec("overlay2", host_fs_type(workdir))
    jobs = [load_job(n).with_overrides(size=size, runtime=1, ramp_time=0) for n in JOBS]
    plan = SweepPlan(specs=[spec], jobs=jobs, placements=("host", "bind"), repeat=1, workdir=workdir)
    out = Path(tempfile.mkdtemp(prefix="storprof-bench-repeats-"))
    cpus = fio_cpus("auto")
    widths: dict[tuple[str, float], list[float]] = {}
    walls: dict[tuple[str, float], list[float]] = {}
    try:
        sweep = Sweep(plan, results.ResultsStore(out, {"benchmark": "repeats"}), progress)
        cells = FioCells(jobs, plan.placements, 1, 600)
        with sweep.ephemeral_session(0, spec) as session:
            cells.prepare(session, sweep.sink)
            for t in range(trials):
                for job in jobs:
                    for runtime in (runtimes if t % 2 == 0 else runtimes[::-1]):
                        width, wall = trial(cells.targets, job, runtime, budget, cpus)
                        widths.setdefault((job.name, runtime), []).append(width)
                        walls.setdefault((job.name, runtime), []).append(wall)
                        progress(f"  trial {t + 1} {job.name} {runtime:g} s runs: ±{width * 100:.1f}% in {wall:.0f} s")
            cells.cleanup(session)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rows = []
    for job in JOBS:
        best = min(runtimes, key=lambda r: statistics.mean(widths[(job, r)]))
        for runtime in runtimes:
            w, wall = statistics.mean(widths[(job, runtime)]), statistics.mean(walls[(job, runtime)])
            rows.append([job, f"{runtime:g} s x {max(2, round(budget / runtime))}", f"±{w * 100:.1f}%",
                         f"{wall:.1f} s", "narrowest" if runtime == best else ""])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=backing.BENCH_WORKDIR)
    ap.add_argument("--budget", type=float, default=8.0, help="seconds of fio time per placement and trial")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--size", default="256m")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    runtimes = RUNTIMES
    if args.smoke:
        args.budget, args.trials, args.size, runtimes = 1.0, 1, "16m", (0.5, 1.0)
    if os.geteuid() != 0:
        print("repeats: run as root (it starts dockerd)", file=sys.stderr)
        return 2

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    try:
        with backing.bench_workdir(args.workdir) as workdir:
            rows = measure(workdir, args.budget, args.trials, args.size, runtimes, progress)
    except StorprofError as e:
        print(f"repeats: {e}", file=sys.stderr)
        return 2
    print(tabulate(rows, headers=["job", "runs per placement", "bind ÷ host 95% half-width (mean of trials)",
                                  "wall per trial", ""], disable_numparse=True))
    print(f"\n{args.budget:g} s of fio time per placement per trial, {args.trials} trial(s), {args.size} files; "
          f"each configuration against the others: the narrowest interval for the same fio time wins; "
          f"wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
