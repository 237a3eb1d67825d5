"""The storprof command line: parse options, call one function, turn errors into one line."""

from __future__ import annotations

import atexit
import functools
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import click

from . import __version__, backing, drivers, report, results
from .cpu import fio_cpus
from .daemon import AttachedDaemon
from .errors import StorprofError, UserError
from .fiojob import builtin_job_names, check_with_fio, load_job
from .mounts import host_fs_type
from .placements import PLACEMENTS
from .proc import require
from .layers import QUICK_PLAN, SWEEP_QUICK_PLAN, LayerPlan
from .copyup import CopyUpPlan
from .deepstack import DeepStackPlan, parse_depths
from .sweep import Sweep, SweepConfig

DEFAULT_WORKDIR = Path("/var/tmp/storprof")

# Union probes: workloads that are not fio jobs, selected with --jobs by these names.
PROBES = ("copyup", "deep-stack")

# The thorough default and the short sweep meant for the README.
THOROUGH = {"size": None, "runtime": None, "ramp_time": None, "repeat": 3}   # job files' own values
# Quick leaves out randrw-4k-70-30 (a blend of the two random jobs) and seqwrite-1m (a fresh
# top-layer file written in large blocks: the least driver-dependent row) to afford 3 repeats and
# the union workloads in the README's 15 minutes: on a shared VM single write runs vary by ±25%,
# and a median of 2 is only a mean. Runs are 1 s: the machine's drift, not the I/O count of a run
# (80k at 1 s), sets the spread here.
QUICK = {"size": "128m", "runtime": 1.0, "ramp_time": 0.0, "repeat": 3,
         "jobs": ["randread-4k", "randwrite-4k", "seqread-1m", "fsync-write-4k",
                  "lower-randread-4k", "lower-seqread-1m", "meta-create", "meta-stat", "meta-delete",
                  *PROBES]}
TABLE_FORMATS = ("simple", "plain", "github", "grid", "pipe")


class _Terminated(Exception):
    """SIGTERM, turned into an exception so every context manager tears down."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def one_line_errors(fn):
    """Every expected failure ends as `storprof: <message>` and a non-zero exit, no traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StorprofError as e:
            click.echo(f"storprof: {e}", err=True)
            sys.exit(e.exit_code)
    return wrapper


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@click.group()
@click.version_option(__version__, prog_name="storprof")
def main():
    """What does a Docker storage driver cost your I/O, compared with the bare host?"""


@main.command("drivers")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
              help="Where loop files would be made (decides the host filesystem).")
@one_line_errors
def drivers_cmd(workdir: Path):
    """List every known driver spec with `ok` or why this host cannot run it."""
    host_fs = host_fs_type(workdir)
    facts = drivers.host_facts(host_fs)
    rows = []
    for spec in drivers.default_specs(host_fs):
        reason = drivers.probe(spec, facts=facts)
        rows.append({"driver_spec": str(spec), "status": "ok" if not reason else "skipped",
                     "reason": reason or spec.info.note})
    click.echo(report.format_driver_status(rows))


@main.command()
@click.option("--drivers", "driver_list", help="Comma-separated specs, e.g. overlay2,overlay2@xfs,vfs "
              "(default: every known spec; those this host cannot run are reported as skipped).")
@click.option("--jobs", "job_list", help="Comma-separated built-in job names, paths of .fio files, or the "
              "union probes copyup and deep-stack (default: every built-in job and both probes).")
@click.option("--placements", "placement_list", default=",".join(PLACEMENTS), show_default=True,
              help="Where fio runs: host, union, volume, bind.")
@click.option("--size", help="fio file size per placement (e.g. 256m, 2g); overrides the job files.")
@click.option("--runtime", type=float, help="Seconds each fio run measures; overrides the job files.")
@click.option("--ramp-time", type=float, help="Seconds fio runs before measuring.")
@click.option("--repeat", type=click.IntRange(1, 100), help="Runs of each (driver, placement, job) [3].")
@click.option("--quick", is_flag=True, help="A short sweep: 128m files, 1 s runs, no ramp, 3 repeats, "
              "every built-in job but randrw-4k-70-30 and seqwrite-1m, and both union probes.")
@click.option("--copyup-sizes", default="64,512", show_default=True,
              help="MiB of the lower-layer files the copyup probe writes into.")
@click.option("--stack-depths", default="1,16,64,max", show_default=True,
              help="Layers of the deep-stack images ('max' = 120, the deepest Docker chains).")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
              help="Where data roots and loop files are made; must be on a real disk filesystem.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Results directory (default: a new ./storprof-results/<timestamp>).")
@click.option("--docker-host", envvar="DOCKER_HOST",
              help="Attach to this daemon (URL, or DOCKER_HOST) instead of starting ephemeral ones.")
@click.option("--image", help="Use this bench image (e.g. built from Dockerfile.bench) instead of "
              "importing one made from the host's fio.")
@click.option("--cpus", default="auto", show_default=True,
              help="CPUs fio runs on (fio cpus_allowed): auto = those not taking the disk's interrupts, "
              "none = no pinning, or a list such as 0-3.")
@click.option("--storage-opt", "storage_opts", multiple=True, metavar="DRIVER.KEY=VALUE",
              help="Passed to the ephemeral dockerd of that driver as --storage-opt (repeatable).")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True,
              help="Terminal table style.")
@click.option("--no-layers", is_flag=True, help="Skip layer create/delete timing (storprof layers).")
@click.option("--quiet", is_flag=True, help="No line per finished run.")
@one_line_errors
def sweep(driver_list, job_list, placement_list, size, runtime, ramp_time, repeat, quick, copyup_sizes,
          stack_depths, workdir, out, docker_host, image, cpus, storage_opts, fmt, no_layers, quiet):
    """Run fio on the host and in containers for each storage driver, and print the overhead."""
    layer_plan = None if no_layers else (SWEEP_QUICK_PLAN if quick else LayerPlan())
    started = time.monotonic()
    preset = QUICK if quick else THOROUGH
    size = size or preset["size"]
    runtime = runtime if runtime is not None else preset["runtime"]
    ramp_time = ramp_time if ramp_time is not None else preset["ramp_time"]
    repeat = repeat or preset["repeat"]
    if runtime is not None and runtime <= 0:
        raise UserError("--runtime must be a positive number of seconds")

    placements = tuple(_split(placement_list))
    unknown = [p for p in placements if p not in PLACEMENTS]
    if unknown or not placements:
        raise UserError(f"unknown placement {', '.join(unknown) or '(none)'}; choose from: {', '.join(PLACEMENTS)}")

    require("fio")
    pinned = fio_cpus(cpus)
    names = _split(job_list) or preset.get("jobs") or [*builtin_job_names(), *PROBES]
    probes = [n for n in names if n in PROBES]
    copyup = CopyUpPlan(_sizes(copyup_sizes, "--copyup-sizes")) if "copyup" in probes else None
    deep_stack = DeepStackPlan(parse_depths(stack_depths)) if "deep-stack" in probes else None
    for plan in (copyup, deep_stack):
        if plan:
            plan.validate()
    if probes and "union" not in placements:
        raise UserError(f"{' and '.join(probes)} measure the union placement; add union to --placements")
    jobs = [load_job(name).with_overrides(size=size, runtime=runtime, ramp_time=ramp_time, cpus_allowed=pinned)
            for name in names if name not in PROBES]
    for job in jobs:
        check_with_fio(job)
    if len({j.name for j in jobs}) != len(jobs):
        raise UserError("two jobs share a name; rename one of the job files")

    _execute(driver_list, jobs, placements, repeat, workdir, out, docker_host, image, storage_opts,
             layer_plan, fmt, quiet, started, {"quick": quick, "fio_cpus_allowed": pinned},
             probes={"copyup": copyup, "deep_stack": deep_stack})


def _execute(driver_list, jobs, placements, repeat, workdir, out, docker_host, image, storage_opts,
             layer_plan, fmt, quiet, started, meta, probes: dict | None = None) -> None:
    """Shared by sweep and layers: resolve the specs, check the machine, run, print the tables."""
    if not docker_host:
        require("dockerd")
        if os.geteuid() != 0:
            raise StorprofError("ephemeral daemons need root: run as root, or attach to a running "
                                "daemon with --docker-host")
        workdir = workdir.resolve()
        made_workdir = not workdir.exists()
        workdir.mkdir(parents=True, exist_ok=True)
        if made_workdir:     # storprof made it, so storprof removes it again (when empty)
            atexit.register(lambda: workdir.rmdir() if workdir.is_dir() and not any(workdir.iterdir()) else None)
        backing.check_workdir(workdir)
        host_fs = host_fs_type(workdir)
        specs = ([drivers.DriverSpec.parse(t, host_fs) for t in _split(driver_list)]
                 or drivers.default_specs(host_fs))
        if layer_plan:
            for spec in specs:
                layer_plan.validate(spec.driver)
    else:
        if driver_list:
            raise UserError("--drivers picks ephemeral daemons; with --docker-host the daemon's own driver is profiled")
        AttachedDaemon(docker_host).stop()    # unreachable: say so before making a results directory
        specs = []

    out = out or results.default_out_dir()
    config = SweepConfig(specs=specs, jobs=jobs, placements=placements, repeat=repeat,
                         workdir=workdir, docker_host=docker_host, image=image,
                         storage_opts=list(storage_opts), layers=layer_plan, **(probes or {}))
    if not docker_host:
        backing.require_free_space(workdir, config.backing_size_bytes(),
                                   "one driver's data root, fio files, images and layers "
                                   "(use a smaller --size or --layer-sizes)")
    store = results.ResultsStore(out, {"command": shlex.join(sys.argv), "run_id": config.run_id,
                                       "placements": list(placements), "jobs": [j.name for j in jobs],
                                       "repeat": repeat, "layers": vars(layer_plan) if layer_plan else None,
                                       "copyup": vars(config.copyup) if config.copyup else None,
                                       "deep_stack": vars(config.deep_stack) if config.deep_stack else None,
                                       "drivers": [str(s) for s in specs] or [f"attached:{docker_host}"],
                                       **meta})
    progress = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        outcomes = Sweep(config, store, progress).run()
    except (KeyboardInterrupt, _Terminated):
        click.echo(f"storprof: interrupted; finished runs are kept in {store.dir}/{results.RESULTS_FILE}", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)

    _print_tables(store.dir, fmt)
    elapsed = time.monotonic() - started
    click.echo(f"\nResults: {store.dir}  (overhead.csv/.md, layers.csv/.md, results.jsonl, raw/)")
    click.echo(f"Total wall time: {elapsed:.0f} s")
    if not any(o.status == "ok" for o in outcomes):
        raise StorprofError("no driver could be measured (see the reasons above)")


def _sizes(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in _split(text))
    except ValueError:
        raise UserError(f"{what} takes whole numbers separated by commas, got {text!r}") from None
    if not values:
        raise UserError(f"{what} needs at least one value")
    return values


@main.command()
@click.option("--drivers", "driver_list", help="Comma-separated specs (default: every known spec).")
@click.option("--samples", type=int, help="Timed samples of each operation [20; quick 5].")
@click.option("--layer-sizes", help="MiB written before each timed commit [0,16,256; quick 0,16,64].")
@click.option("--depths", help="Image depths in layers [1,8,32; quick 1,4,8].")
@click.option("--bulk", type=int, help="Containers created then removed in a row [50; quick 10].")
@click.option("--large-image", type=int, help="MiB of files added to the bench image for the large image "
              "[256; quick 128].")
@click.option("--quick", is_flag=True, help="Small sizes and few samples.")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Results directory.")
@click.option("--docker-host", envvar="DOCKER_HOST", help="Attach to this daemon instead.")
@click.option("--image", help="Use this bench image instead of the offline one.")
@click.option("--storage-opt", "storage_opts", multiple=True, metavar="DRIVER.KEY=VALUE")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True)
@click.option("--quiet", is_flag=True)
@one_line_errors
def layers(driver_list, samples, layer_sizes, depths, bulk, large_image, quick, workdir, out, docker_host,
           image, storage_opts, fmt, quiet):
    """Time layer creation and deletion per storage driver, and how the cost grows."""
    started = time.monotonic()
    base = QUICK_PLAN if quick else LayerPlan()
    plan = LayerPlan(samples=samples if samples is not None else base.samples,
                     layer_sizes_mib=_sizes(layer_sizes, "--layer-sizes") if layer_sizes else base.layer_sizes_mib,
                     depths=_sizes(depths, "--depths") if depths else base.depths,
                     bulk=bulk if bulk is not None else base.bulk,
                     large_image_mib=large_image if large_image is not None else base.large_image_mib)
    plan.validate("any")
    _execute(driver_list, [], ("host",), 1, workdir, out, docker_host, image, storage_opts, plan, fmt,
             quiet, started, {"quick": quick})


def _print_tables(results_dir: Path, fmt: str, write: bool = True) -> None:
    runs = results.load_runs(results_dir)
    status = results.load_driver_status(results_dir)
    over = report.overhead(runs) if not runs.empty else runs
    if not runs.empty:
        if write:
            report.write_tables(over, status, results_dir)
        click.echo(report.format_table(over, fmt))
        click.echo(report.table_notes(over))
    records = results.read_records(results_dir)
    ops, slopes = report.layer_tables(records)
    if not ops.empty:
        if write:
            report.write_layer_tables(ops, slopes, results_dir)
        click.echo("")
        click.echo(report.format_layers(ops, slopes, fmt))
    click.echo("")
    click.echo(report.format_driver_status(status, fmt))


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True)
@one_line_errors
def table(results_dir: Path, fmt: str):
    """Print the overhead table of a results directory again."""
    _print_tables(results_dir, fmt, write=False)


if __name__ == "__main__":
    main()
