"""How far to trust storprof: control ratios and their intervals, repeatability, agreement with fio
run by hand, what a fixed budget buys (cells within the precision target, control coverage), harness
overhead and memory, each measured in one run on this machine and printed with its target.

It reports and does not gate: it exits 0 whether or not a target holds (non-zero only for bad
input, such as not being root). Run as root:  .venv/bin/python benchmarks/fidelity.py
"""

from __future__ import annotations

import argparse
import math
import resource
import shlex
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
from storprof.harness.plan import PROBES, QUICK, SweepPlan, probe_plans
from storprof.harness.sweep import Sweep
from storprof.harness.workload import Unit
from storprof.host import backing
from storprof.host.cpu import fio_cpus
from storprof.host.mounts import host_fs_type
from storprof.host.proc import run
from storprof.results import ResultSet
from storprof.stats import intervals as stats
from storprof.stats import summary
from storprof.storage.fio.cells import FioCells, data_file_name, plan_order
from storprof.storage.fio.job import load_job
from storprof.storage.fio.placements import AA
from storprof.storage.probes.copyup import CopyUpPlan
from storprof.storage.probes.deepstack import DeepStackPlan
from storprof.storage.probes.lookup import LookupPlan

CONTROL_JOBS = ["randread-4k", "randwrite-4k", "seqread-1m", "seqwrite-1m"]
BY_HAND = "fio-by-hand"
PRECISION = 0.05


def by_hand_argv(job_text: str, scratch: Path) -> list[str]:
    """What a person would type: fio's own command-line form of the job (fio --showcmd), with
    terse output, so neither storprof's runner nor its JSON parser is in the path."""
    path = scratch / "by-hand.fio"
    path.write_text(job_text)
    cmd = run(["fio", "--showcmd", str(path)], timeout=60).stdout.strip()
    return shlex.split(cmd) + ["--minimal"]


def terse_iops(line: str) -> float:
    """fio terse v3: field 8 is read IOPS, field 49 write IOPS (1-based)."""
    fields = line.strip().splitlines()[-1].split(";")
    if fields[0] != "3":
        raise ValueError(f"not fio terse v3 output: {line[:80]!r}")
    return float(fields[7]) + float(fields[48])


def terse_bw_bytes(line: str) -> float:
    """fio terse v3: fields 7 and 48 are read and write bandwidth in KiB/s."""
    fields = line.strip().splitlines()[-1].split(";")
    return (float(fields[6]) + float(fields[47])) * 1024


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0


def verdict(ok: bool) -> str:
    return "holds" if ok else "MISSED"


def measure_fidelity(workdir: Path, spec: DriverSpec, repeats: int, runtime: float, ramp: float,
                     size: str, cpus: str | None, out: Path, progress) -> tuple[list[list], dict]:
    jobs = [load_job(n).with_overrides(size=size, runtime=runtime, ramp_time=ramp, cpus_allowed=cpus)
            for n in CONTROL_JOBS]
    plan = SweepPlan(specs=[spec], jobs=jobs, placements=("host", "volume", "bind", AA), repeat=repeats,
                     workdir=workdir)
    store = results.ResultsStore(out, {"benchmark": "fidelity"})
    sweep = Sweep(plan, store, progress)
    cells = FioCells(jobs, plan.placements, repeats, plan.fio_timeout)
    by_hand = _run_interleaved(sweep, cells, spec, jobs, repeats, progress)
    return _fidelity_rows(out, by_hand), {"by_hand": by_hand}


def _run_interleaved(sweep: Sweep, cells: FioCells, spec: DriverSpec, jobs, repeats: int,
                     progress) -> dict[str, dict[int, float]]:
    """storprof's cells and fio by hand, interleaved; returns fio by hand's values (job -> repeat -> value)."""
    by_hand: dict[str, dict[int, float]] = {j.name: {} for j in jobs}
    scratch = Path(tempfile.mkdtemp(prefix="storprof-bench-"))
    try:
        with sweep.ephemeral_session(0, spec) as session:
            cells.prepare(session, sweep.sink)
            by_name = {j.name: j for j in jobs}
            order = plan_order(list(by_name), ("host", "volume", "bind", AA, BY_HAND), repeats)
            for n, cell in enumerate(order, 1):
                job = by_name[cell.job]
                if cell.placement == BY_HAND:
                    argv = by_hand_argv(job.render(cells.targets["host"].fio_dir, data_file_name(job)), scratch)
                    line = run(argv, timeout=3600).stdout
                    value = terse_iops(line) if job.primary_metric == "iops" else terse_bw_bytes(line)
                    by_hand[job.name][cell.repeat] = value
                    said = f"{value:,.0f}"
                else:
                    unit = Unit("fio", cell.job, cell.placement, cell.repeat, ())
                    said = cells.run(unit, session, sweep.sink)
                progress(f"  {n}/{len(order)} {cell.job} {cell.placement} r{cell.repeat + 1}: {said}")
            cells.cleanup(session)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return by_hand


def _fidelity_rows(out: Path, by_hand: dict[str, dict[int, float]]) -> list[list]:
    runs = ResultSet.load(out).runs
    runs = runs[runs["status"] == "ok"].copy()
    runs["value"] = summary.primary_value(runs)
    over = summary.summarize(runs)
    rows, covering, cells = [], 0, 0
    for job in CONTROL_JOBS:
        for placement in (AA, "bind", "volume"):
            r = over[(over.job == job) & (over.placement == placement)]
            if r.empty or r["ratio"].isna().all():
                rows.append([f"control {placement}/host", job, "no pairs", "-", "MISSED"])
                continue
            row = r.iloc[0]
            contains = bool(row.ratio_low <= 1 <= row.ratio_high)
            measured = f"{row.ratio:.3f} [{row.ratio_low:.3f}–{row.ratio_high:.3f}] (n={int(row.n_pairs)})"
            if placement == AA:        # truly 1.00x: a test of the intervals
                covering, cells = covering + contains, cells + 1
                rows.append([f"control {placement}/host", job, measured, "interval contains 1.00", verdict(contains)])
            else:                      # the container's cost on a plain filesystem: a figure, not a test
                rows.append([f"container cost {placement}/host", job, measured, "-", "-"])
    rows.append(["A/A intervals that contain 1.00", "all", f"{covering} of {cells}",
                 "≈ 95% (≥ 90%)", verdict(cells > 0 and covering >= 0.9 * cells)])
    for job in CONTROL_JOBS:
        for placement in ("host", "volume", "bind", AA):
            vals = list(runs[(runs.job == job) & (runs.placement == placement)]["value"])
            c = cv(vals)
            rows.append([f"repeatability CV ({placement})", job, f"{c * 100:.1f}% (n={len(vals)})",
                         "≤ 5%", verdict(c <= 0.05)])
        c = cv(list(by_hand[job].values()))
        rows.append([f"repeatability CV ({BY_HAND})", job, f"{c * 100:.1f}% (n={len(by_hand[job])})",
                     "(noise floor)", "-"])
    for job in CONTROL_JOBS:
        host = runs[(runs.job == job) & (runs.placement == "host")].set_index("repeat")["value"]
        ratio = statistics.median(host[r] / v for r, v in by_hand[job].items() if r in host.index)
        rows.append(["agreement storprof/fio by hand", job, f"{ratio:.3f}", "1.00 ± 0.03",
                     verdict(abs(ratio - 1) <= 0.03)])
    bench_fio = shutil.which("bench-fio")
    rows.append(["agreement storprof/bench-fio", "-",
                 "bench-fio (fio-plot) not installed" if not bench_fio else
                 f"{bench_fio} found; comparing with it is not implemented yet", "1.00 ± 0.03", "-"])
    return rows


def measure_harness(workdir: Path, spec: DriverSpec, cpus: str | None, out: Path, progress, budget: float,
                    smoke: bool = False) -> tuple[list[list], dict]:
    """The quick sweep of one driver (`sweep --quick --no-layers` with `budget` seconds for it), in
    this process, timed by phase; then how many of its ratio cells reached the precision target and
    how many of its controls' intervals contain 1.00. A smoke run does one job and the smallest probes."""
    names = ["randread-4k"] if smoke else [n for n in QUICK.jobs if n not in PROBES]
    jobs = [load_job(n).with_overrides(size="16m" if smoke else QUICK.size, runtime=QUICK.runtime,
                                       ramp_time=QUICK.ramp_time, cpus_allowed=cpus) for n in names]
    smallest = {"copyup": CopyUpPlan((16,)), "deep-stack": DeepStackPlan((1, 4)), "lookup": LookupPlan(200)}
    probes = probe_plans(["copyup", "deep-stack", "lookup"], QUICK.placements, QUICK, smallest if smoke else None)
    plan = SweepPlan(specs=[spec], jobs=jobs, placements=QUICK.placements, repeat=2 if smoke else QUICK.repeat,
                     workdir=workdir, precision=PRECISION, budget_seconds=budget, **probes)
    store = results.ResultsStore(out, {"benchmark": "harness", "precision": PRECISION})
    sweep = Sweep(plan, store, progress)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    outcomes = sweep.run()
    wall = time.monotonic() - start
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if [o.status for o in outcomes] != ["ok"]:
        raise StorprofError(f"the quick sweep of {spec} did not finish: {outcomes}")
    runs = ResultSet.load(out).runs
    rows = [["quick sweep wall time", str(spec), f"{wall:.1f} s ({len(runs)} records)",
             f"≤ {budget:.0f} s budget", verdict(wall <= budget)]]
    rows += _precision_rows(runs, spec, budget)
    rows += _cost_rows(runs, sweep, spec, wall)
    rows.append(["peak RSS of the process running the sweep", "", f"{rss_peak / 1024:.0f} MiB "
                 f"(after imports, before the sweep: {rss_before / 1024:.0f} MiB)", "-", "-"])
    return rows, {"wall": wall}


def _precision_rows(runs, spec: DriverSpec, budget: float) -> list[list]:
    """What the budget bought: ratio cells whose interval is within ±PRECISION, and control coverage."""
    over = summary.summarize(runs, PRECISION)
    cells = over[over["ratio"].notna()]
    half = (cells["ratio_high"].map(math.log) - cells["ratio_low"].map(math.log)) / 2
    reached = int((half <= math.log1p(PRECISION)).sum())
    answered = int((cells["verdict"] != stats.UNKNOWN).sum())
    floor = summary.noise_floor(runs, over)
    coverage = f"{floor.covering} of {floor.cells}" if floor else "no control cells"
    return [[f"ratio cells within ±{PRECISION * 100:.0f}% in the budget", str(spec),
             f"{reached} of {len(cells)} ({answered} answered: real or within ±{PRECISION * 100:.0f}% of 1)",
             "-", "-"],
            ["  A/A intervals that contain 1.00", str(spec), coverage, "≈ 95% (≥ 90%)",
             verdict(floor is not None and floor.covering >= 0.9 * floor.cells)]]


def _cost_rows(runs, sweep: Sweep, spec: DriverSpec, wall: float) -> list[list]:
    """Where the sweep's time went (its time account), and the share spent outside measuring."""
    t = sweep.times
    probes = t["copyup"] + t["deep-stack"] + t["lookup"]
    measured_wall = wall - t["daemon_start"]
    fio_measured = t["fio_measuring"] + t["fio_ramp"]
    measuring = fio_measured + probes
    costs = {"daemon start (excluded)": t["daemon_start"], "bench image import": t["image"],
             "container start": t["containers"], "preconditioning data files": t["precondition"],
             "fio start/exit and layout per run": t["fio_startup"], "teardown": t["teardown"]}
    costs["everything else (mkfs, probing, results)"] = measured_wall - measuring - sum(
        v for k, v in costs.items() if not k.startswith("daemon"))
    largest = max((k for k in costs if not k.startswith("daemon")), key=costs.__getitem__)
    share = (measured_wall - measuring) / measured_wall
    rows = [["measuring: what fio measured, and its ramp", str(spec), f"{fio_measured:.1f} s", "-", "-"],
            ["measuring: union probes (a container per sample)", str(spec), f"{probes:.1f} s", "-", "-"]]
    rows += [[f"  {k}", "", f"{v:.1f} s", "", ""] for k, v in costs.items()]
    rows.append(["time outside measuring (daemon start excluded)", str(spec),
                 f"{share * 100:.1f}% (largest: {largest})", "≤ 20%", verdict(share <= 0.20)])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=backing.BENCH_WORKDIR)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--runtime", type=float, default=3.0)
    ap.add_argument("--ramp-time", type=float, default=1.0)
    ap.add_argument("--size", default="256m")
    ap.add_argument("--out", type=Path, help="keep the results here (default: a temporary directory)")
    ap.add_argument("--cpus", default="auto", help="as storprof sweep --cpus")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds of the quick sweep of one spec (the README's 9 minutes over this host's specs)")
    ap.add_argument("--skip-harness", action="store_true", help="only the fidelity figures")
    ap.add_argument("--skip-fidelity", action="store_true", help="only the harness and memory figures")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and few repeats: checks the benchmark runs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.repeats, args.runtime, args.ramp_time, args.size, args.budget = 2, 0.3, 0.0, "16m", 40.0
    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
    try:
        with backing.bench_workdir(args.workdir) as workdir:
            spec = DriverSpec("overlay2", host_fs_type(workdir))
            out = args.out or Path(tempfile.mkdtemp(prefix="storprof-fidelity-"))
            started = time.monotonic()
            cpus = fio_cpus(args.cpus)
            rows: list[list] = []
            if not args.skip_harness:    # first, so the process's peak memory is the sweep's own
                rows, _ = measure_harness(workdir, spec, cpus, out / "harness", progress, args.budget,
                                          smoke=args.smoke)
            if not args.skip_fidelity:
                more, _ = measure_fidelity(workdir, spec, args.repeats, args.runtime, args.ramp_time,
                                           args.size, cpus, out / "fidelity", progress)
                rows = more + rows
    except StorprofError as e:
        print(f"fidelity: {e}", file=sys.stderr)
        return 2
    print(tabulate(rows, headers=["figure", "job / driver", "measured", "target", "verdict"],
                   disable_numparse=True))
    kept = f"results in {out}"
    if args.smoke and not args.out:
        shutil.rmtree(out, ignore_errors=True)       # a smoke run's figures mean nothing
        kept = "results of a smoke run not kept"
    print(f"\n{spec}: {args.repeats} repeats of {args.runtime:g} s runs after {args.ramp_time:g} s ramp, "
          f"{args.size} files, fio on CPUs {cpus or 'any'}; benchmark wall time {time.monotonic() - started:.0f} s; "
          f"{kept}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
