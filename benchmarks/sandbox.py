"""What the host sandbox costs: fio on the host inside bubblewrap against the same fio outside it,
interleaved in one run on one file, and the sandbox's start-up time. Each figure is printed with
its target; it reports and does not gate (exit 0 either way; 2 for bad input). Run as root:

    .venv/bin/python benchmarks/sandbox.py            # about 2 minutes here
    .venv/bin/python benchmarks/sandbox.py --smoke    # seconds: checks the benchmark still runs
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

from storprof.errors import StorprofError
from storprof.host import safepath
from storprof.host.backing import BENCH_WORKDIR
from storprof.host.cpu import fio_cpus
from storprof.host.proc import run
from storprof.host.sandbox import INPUT_DIR, run_sandboxed
from storprof.stats.intervals import paired_ratios, ratio_interval
from storprof.storage.fio.job import load_job, precondition_job
from storprof.storage.fio.placements import fio_argv
from storprof.storage.fio.result import parse_fio_output

JOBS = ["randread-4k", "randwrite-4k", "seqread-1m"]
TARGET = 0.03          # the sandbox may cost at most 3% of throughput
START_TARGET_MS = 50   # and at most this much start-up per run


def measure(job_text: str, directory: Path, scratch: Path, sandboxed: bool) -> float:
    """One fio run's primary number (IOPS or bytes/s, whichever the job reports more of)."""
    path = scratch / "job.fio"
    path.write_text(job_text)
    if sandboxed:
        done = run_sandboxed("fio", fio_argv(f"{INPUT_DIR}/job.fio")[1:], writable=[directory],
                             inputs={"job.fio": path}, timeout=600)
    else:
        done = run(fio_argv(str(path)), timeout=600)
    result = parse_fio_output(done.stdout, done.stderr)
    metrics = result.metrics()
    return metrics["total_bw_bytes"] if "1m" in job_text else metrics["total_iops"]


def start_ms(sandboxed: bool, directory: Path, times: int) -> float:
    samples = []
    for _ in range(times):
        t0 = time.perf_counter()
        if sandboxed:
            run_sandboxed("fio", ["--version"], writable=[directory], timeout=60)
        else:
            run(["fio", "--version"], timeout=60)
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def verdict(interval, target: float) -> str:
    if interval is None or interval.n < 2:
        return "-"
    if 1 - target <= interval.low and interval.high <= 1 + target:
        return "holds"
    if interval.low <= 1 <= interval.high:
        return "no difference found (interval wider than the target)"
    return "MISSED"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=BENCH_WORKDIR)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--runtime", type=float, default=2.0)
    ap.add_argument("--size", default="256m")
    ap.add_argument("--smoke", action="store_true", help="one repeat of short runs on a small file")
    args = ap.parse_args(argv)
    if args.smoke:
        args.repeats, args.runtime, args.size = 2, 0.3, "16m"
    if os.geteuid() != 0:
        print("sandbox: run as root (fio runs with direct I/O like storprof's host placement)", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        workdir = safepath.make_private_dir(args.workdir, "benchmark work directory")
    except StorprofError as e:
        print(f"sandbox: {e}", file=sys.stderr)
        return 2
    directory = Path(tempfile.mkdtemp(prefix="storprof-bench-sandbox-", dir=workdir))
    scratch = Path(tempfile.mkdtemp(prefix="storprof-bench-jobs-", dir=workdir))
    rows = []
    try:
        cpus = fio_cpus("auto")
        jobs = [load_job(n).with_overrides(size=args.size, runtime=args.runtime, ramp_time=0, cpus_allowed=cpus)
                for n in JOBS]
        run(fio_argv(str(_write(scratch / "pre.fio", precondition_job(args.size).render(str(directory), "data.dat")))),
            timeout=600)
        for job in jobs:
            text = job.render(str(directory), "data.dat")
            plain, boxed = [], []
            for r in range(args.repeats):          # ABBA: neither side always goes first
                for sandboxed in ((False, True) if r % 2 == 0 else (True, False)):
                    (boxed if sandboxed else plain).append(measure(text, directory, scratch, sandboxed))
            interval = ratio_interval(paired_ratios(boxed, plain))
            rows.append(["sandboxed / plain fio", job.name,
                         f"{interval.ratio:.3f} [{interval.low:.3f}-{interval.high:.3f}] (n={interval.n})",
                         f"1.00 ± {TARGET:.2f}", verdict(interval, TARGET)])
        plain_ms = start_ms(False, directory, 3 if args.smoke else 20)
        boxed_ms = start_ms(True, directory, 3 if args.smoke else 20)
        rows.append(["start-up added by the sandbox", "fio --version",
                     f"{boxed_ms - plain_ms:.1f} ms ({boxed_ms:.1f} against {plain_ms:.1f}, medians)",
                     f"≤ {START_TARGET_MS} ms", "holds" if boxed_ms - plain_ms <= START_TARGET_MS else "MISSED"])
    except StorprofError as e:
        print(f"sandbox: {e}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    print(tabulate(rows, headers=["figure", "job", "measured (95% interval)", "target", "verdict"],
                   disable_numparse=True))
    print(f"\n{args.repeats} interleaved pairs of {args.runtime:g} s runs on a {args.size} file in {args.workdir}, "
          f"fio on CPUs {cpus or 'any'}; wall time {time.monotonic() - started:.0f} s")
    return 0


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


if __name__ == "__main__":
    sys.exit(main())
