"""Does the quick sweep answer? The README's sweep (`storprof sweep --quick`, every spec this host
runs) with this storprof and, side by side in the same run, with the storprof of BASELINE_REV (the
settings before issue 29: no settle, widest-first rounds, the larger probes, a budget for extra
rounds only); for each: the specs, the wall time, the share of it fio spent measuring, the ratio
cells answered at ±5% and the A/A coverage, each beside its target.

Every figure is recomputed here from results.jsonl, not read from storprof's summary: per cell
(spec, job or probe row, placement), the log of each repeat's ratio to the host run of the same
repeat, a t-interval on those logs; a cell is answered when the interval excludes 1.00 or its
half-width is within ±5%. Measuring is each fio run's own runtime (what fio reports it measured).
It reports and does not gate: exit 0 whether or not a target holds. Run as root:
  .venv/bin/python benchmarks/answers.py [--smoke] [--only new|baseline]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scipy import stats as scipy_stats
from tabulate import tabulate

from storprof.host import backing

ROOT = Path(__file__).resolve().parents[1]
PRECISION = 0.05
AA = "host-aa"
PROBE_IDENTITY = ("workload", "operation", "size_mib", "depth", "files", "file_bytes", "containers", "images")
TARGETS = {"wall": 600.0, "answered": 0.60, "measuring": 0.50, "coverage": (0.90, 0.98)}


@dataclass(frozen=True)
class Recount:
    """One sweep's cells as counted here: how many, how many answered, the A/A cells covering 1.00."""

    cells: int
    answered: int
    aa_cells: int
    aa_covering: int


def _lines(results_dir: Path):
    with open(results_dir / "results.jsonl") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _spec(line: dict) -> str | None:
    context = line.get("context")
    if isinstance(context, dict):
        return context.get("driver_spec")
    return line.get("driver_spec")


def _value(line: dict) -> tuple[tuple, float] | None:
    """(row key, value) of one measured sample: a fio run's primary metric, a probe's seconds."""
    if line.get("status", "ok") != "ok":
        return None
    if line.get("kind") == "fio":
        metrics = line.get("metrics") or {}
        value = metrics.get("total_bw_bytes" if line.get("primary_metric") == "bw" else "total_iops")
        return (("fio", line.get("job")), value) if value else None
    if line.get("kind") == "probe":
        seconds = line.get("seconds", (line.get("metrics") or {}).get("seconds"))
        key = ("probe",) + tuple(line.get(name) for name in PROBE_IDENTITY)
        return (key, seconds) if seconds and seconds > 0 else None
    return None


def recount(results_dir: Path, precision: float = PRECISION) -> Recount:
    """Count the answered cells of a results directory from its lines alone."""
    samples: dict[tuple, dict[int, float]] = {}
    for line in _lines(results_dir):
        keyed = _value(line)
        spec = _spec(line)
        if keyed is None or spec is None:
            continue
        key, value = keyed
        samples.setdefault((spec, key, line.get("placement")), {})[int(line["repeat"])] = float(value)
    cells = answered = aa_cells = aa_covering = 0
    for (spec, key, placement), by_repeat in samples.items():
        host = samples.get((spec, key, "host"))
        if placement == "host" or host is None:
            continue
        logs = [math.log(v / host[r]) for r, v in by_repeat.items() if r in host]
        if len(logs) < 2:
            continue
        n = len(logs)
        mean = sum(logs) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
        half = scipy_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
        cells += 1
        if mean - half > 0 or mean + half < 0 or half <= math.log1p(precision):
            answered += 1
        if placement == AA:
            aa_cells += 1
            aa_covering += int(mean - half <= 0 <= mean + half)
    return Recount(cells, answered, aa_cells, aa_covering)


def measuring_seconds(results_dir: Path) -> float:
    """Seconds fio itself measured, over every fio run of the sweep (its runtime in the raw JSON
    would be the same figure; the line's runtime_ms is what storprof parsed from it)."""
    total = 0.0
    for line in _lines(results_dir):
        if line.get("kind") == "fio" and line.get("status", "ok") == "ok":
            runtime_ms = line.get("runtime_ms", (line.get("metrics") or {}).get("runtime_ms"))
            if runtime_ms is None:
                runtime_ms = 1000 * float((line.get("params") or {}).get("runtime") or 0)
            total += float(runtime_ms) / 1000
    return total


def run_sweep(name: str, source: Path, out: Path, workdir: Path, smoke: bool) -> float:
    """`storprof sweep --quick` of the storprof in `source` (or a tiny one for --smoke); its wall time."""
    argv = [sys.executable, "-m", "storprof.cli", "sweep", "--quick", "--out", str(out), "--workdir", str(workdir),
            "--quiet"]
    if smoke:
        argv += ["--drivers", "vfs@ext4", "--jobs", "randread-4k", "--repeat", "2", "--budget", "1", "--no-layers"]
    env = dict(os.environ, PYTHONPATH=str(source))
    start = time.monotonic()
    done = subprocess.run(argv, cwd=source, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        sys.exit(f"answers: the {name} sweep failed: {last}")
    return wall


def baseline_source(scratch: Path) -> Path:
    """The baseline storprof's files, from git (BASELINE_REV), in a directory of the scratch dir."""
    target = scratch / "baseline-src"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE_REV], capture_output=True, check=False)
    if archive.returncode != 0:
        sys.exit(f"answers: git archive {BASELINE_REV} failed: {archive.stderr.decode().strip()[:200]}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def rows_for(name: str, wall: float, results_dir: Path) -> list[list]:
    counted = recount(results_dir)
    measuring = measuring_seconds(results_dir)
    specs = sorted({s for s in (_spec(line) for line in _lines(results_dir)
                                if line.get("kind") in ("fio", "probe")) if s})
    share = measuring / wall if wall else float("nan")
    answered = counted.answered / counted.cells if counted.cells else float("nan")
    coverage = counted.aa_covering / counted.aa_cells if counted.aa_cells else float("nan")
    low, high = TARGETS["coverage"]
    return [
        [name, "specs", f"{len(specs)}: {', '.join(specs)}", "every spec the host runs"],
        [name, "wall time", f"{wall:.0f} s", f"≤ {TARGETS['wall']:.0f} s"],
        [name, "fio measuring share", f"{share:.0%} ({measuring:.0f} s)", f"≥ {TARGETS['measuring']:.0%}"],
        [name, f"cells answered at ±{PRECISION:.0%}", f"{counted.answered} of {counted.cells} ({answered:.0%})",
         f"≥ {TARGETS['answered']:.0%} (aim 90%)"],
        [name, "A/A intervals containing 1.00", f"{counted.aa_covering} of {counted.aa_cells} ({coverage:.0%})",
         f"{low:.0%}–{high:.0%}"],
    ]


# The last storprof before issue 29's changes: the baseline configuration.
BASELINE_REV = "94e2e0bdc38b2c2b0c9313fc506a77eaf2481867"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="one tiny sweep each: the benchmark runs, figures mean nothing")
    parser.add_argument("--only", choices=("new", "baseline"), help="run one configuration")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("answers: run as root (the sweep starts its own daemons)")
    rows: list[list] = []
    with backing.bench_workdir(backing.BENCH_WORKDIR) as bench, \
            tempfile.TemporaryDirectory(prefix="answers-", dir=bench) as scratch:
        sources = {"new": ROOT}
        if args.only != "new":
            sources["baseline"] = baseline_source(Path(scratch))
        for name, source in sources.items():
            if args.only and args.only != name:
                continue
            out, work = Path(scratch) / f"out-{name}", Path(scratch) / f"work-{name}"
            wall = run_sweep(name, source, out, work, args.smoke)
            rows += rows_for(name, wall, out)
    print(tabulate(rows, headers=["configuration", "figure", "measured", "target"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
