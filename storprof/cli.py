"""The storprof command line: parse options, call one function, turn errors into one line."""

from __future__ import annotations

import atexit
import functools
import os
import re
import shlex
import signal
import sys
import time
import warnings
from pathlib import Path

import click

from . import __version__, backing, drivers, report, results
from .cpu import fio_cpus
from .daemon import AttachedDaemon
from .errors import StorprofError, UserError
from .fiojob import builtin_job_names, check_with_fio, load_job
from .fiooptions import ALLOWED, MAX_SECONDS, refusable_by_flag
from .mounts import host_fs_type
from .placements import PLACEMENTS
from .proc import require
from .layers import QUICK_PLAN, SWEEP_QUICK_PLAN, LayerPlan
from .copyup import CopyUpPlan
from .deepstack import DeepStackPlan, parse_depths
from .progress import SweepProgress
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
# What --image and --docker-host take: an image reference, and a daemon address.
IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/-]{0,200}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
DOCKER_HOST = re.compile(r"unix:///[A-Za-z0-9_./-]{1,200}|(?:tcp|http|https)://[A-Za-z0-9.\[\]:-]{1,200}"
                         r"|ssh://(?:[A-Za-z0-9_.-]+@)?[A-Za-z0-9.-]+(?::\d+)?")
# Terminal table styles (tabulate's, 'markdown' being its pipe style) and two for machines.
TABLE_FORMATS = ("simple", "plain", "github", "markdown", "grid", "pipe", "csv", "json")


class _Terminated(Exception):
    """SIGTERM or SIGHUP (a closed terminal), turned into an exception so every context manager
    tears down."""


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


class OneLineErrors(click.Group):
    """click's usage errors (a bad option value, an unknown option) as one line too, like every
    other bad input: `storprof: <what is wrong> (see storprof <command> --help)`, exit 2."""

    def main(self, args=None, prog_name=None, **kwargs):
        kwargs.pop("standalone_mode", None)
        try:
            code = super().main(args=args, prog_name=prog_name, standalone_mode=False, **kwargs)
        except click.UsageError as e:
            if type(e).__name__ == "NoArgsIsHelpError":     # bare `storprof`: the help, as click gives it
                click.echo(e.format_message())
                sys.exit(0)
            where = e.ctx.command_path if e.ctx is not None else "storprof"
            click.echo(f"storprof: {e.format_message()} (see {where} --help)", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"storprof: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("storprof: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=OneLineErrors)
@click.version_option(__version__, prog_name="storprof")
def main():
    """What does a Docker storage driver cost your I/O, compared with the bare host?"""
    # A skipped half-written line and the like: one line on stderr, not Python's two-line form.
    warnings.formatwarning = lambda message, *args, **kwargs: f"storprof: warning: {message}\n"


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
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path),
              help="Continue the sweep whose results are in this directory: run only the cells it lacks "
              "(give the same options as the first time).")
@click.option("--docker-host", envvar="DOCKER_HOST",
              help="Attach to this daemon (URL, or DOCKER_HOST) instead of starting ephemeral ones.")
@click.option("--image", help="Use this bench image (e.g. built from Dockerfile.bench) instead of "
              "importing one made from the host's fio.")
@click.option("--cpus", default="auto", show_default=True,
              help="CPUs fio runs on (fio cpus_allowed): auto = those not taking the disk's interrupts, "
              "none = no pinning, or a list such as 0-3.")
@click.option("--storage-opt", "storage_opts", multiple=True, metavar="DRIVER.KEY=VALUE",
              help="Passed to the ephemeral dockerd of that driver as --storage-opt (repeatable).")
@click.option("--allow-option", "allow_options", multiple=True, metavar="NAME",
              help="Let a fio option that storprof does not allow by default through in job files "
              "(repeatable; recorded in meta.json). fio still runs in its sandbox.")
@click.option("--fio-timeout", type=click.FloatRange(10, 86400), default=3600, show_default=True,
              help="Seconds after which a fio run is killed (a time-based run: its runtime and ramp plus a margin, "
              "if shorter).")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True,
              help="Terminal table style.")
@click.option("--no-layers", is_flag=True, help="Skip layer create/delete timing (storprof layers).")
@click.option("--quiet", is_flag=True, help="No progress bar and no line per finished run.")
@one_line_errors
def sweep(driver_list, job_list, placement_list, size, runtime, ramp_time, repeat, quick, copyup_sizes,
          stack_depths, workdir, out, resume_dir, docker_host, image, cpus, storage_opts, allow_options,
          fio_timeout, fmt, no_layers, quiet):
    """Run fio on the host and in containers for each storage driver, and print the overhead."""
    layer_plan = None if no_layers else (SWEEP_QUICK_PLAN if quick else LayerPlan())
    started = time.monotonic()
    preset = QUICK if quick else THOROUGH
    size = size or preset["size"]
    runtime = runtime if runtime is not None else preset["runtime"]
    ramp_time = ramp_time if ramp_time is not None else preset["ramp_time"]
    repeat = repeat or preset["repeat"]
    if runtime is not None and not 0 < runtime <= MAX_SECONDS:
        raise UserError(f"--runtime takes seconds above 0 and up to {MAX_SECONDS}, got {runtime:g}")
    if ramp_time is not None and not 0 <= ramp_time <= MAX_SECONDS:
        raise UserError(f"--ramp-time takes seconds from 0 to {MAX_SECONDS}, got {ramp_time:g}")
    if size is not None and ALLOWED["size"].why_not(size):
        raise UserError(f"--size takes a size such as 256m or 2g (from 1 byte to 1 TiB), got {size!r}")
    for name in allow_options:
        problem = refusable_by_flag(name)
        if problem:
            raise UserError(problem)

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
        raise UserError(f"the {' and '.join(probes)} probe{'s' if len(probes) > 1 else ''} measure"
                        f"{'' if len(probes) > 1 else 's'} the union placement; add union to --placements")
    jobs = [load_job(name, allowed_extra=allow_options)
            .with_overrides(size=size, runtime=runtime, ramp_time=ramp_time, cpus_allowed=pinned)
            for name in names if name not in PROBES]
    for job in jobs:
        check_with_fio(job)
    if len({j.name for j in jobs}) != len(jobs):
        raise UserError("two jobs share a name; rename one of the job files")

    done = None
    if resume_dir:
        if out:
            raise UserError("--resume continues in its own directory; leave out --out")
        done = _resume_plan(resume_dir, jobs)
        out = resume_dir
    _execute(driver_list, jobs, placements, repeat, workdir, out, docker_host, image, storage_opts,
             layer_plan, fmt, quiet, started, {"quick": quick, "fio_cpus_allowed": pinned,
                                               "allowed_options": sorted(set(allow_options)),
                                               "fio_timeout": fio_timeout},
             probes={"copyup": copyup, "deep_stack": deep_stack}, done=done, fio_timeout=fio_timeout)


def _resume_plan(resume_dir: Path, jobs) -> frozenset:
    """What the results directory already has; refuses one measured with other job settings,
    whose rows could not share a table with the new ones."""
    from .sweep import finished_keys
    records = results.read_records(resume_dir)
    if not (Path(resume_dir) / results.META_FILE).is_file():
        raise UserError(f"{resume_dir} is not a storprof results directory (no {results.META_FILE})")
    planned = {j.name: {"size": j.option("size"), "runtime": j.option("runtime"),
                        "ramp_time": j.option("ramp_time")} for j in jobs}
    for r in records:
        if r.get("kind") == "fio" and r.get("job") in planned:
            had = {k: (r.get("params") or {}).get(k) for k in planned[r["job"]]}
            if had != planned[r["job"]]:
                diff = ", ".join(f"{k} {had[k]} (now {v})" for k, v in planned[r["job"]].items() if had[k] != v)
                raise UserError(f"{resume_dir} measured {r['job']} with {diff}; resume with the same options")
    return finished_keys(records)


def _make_workdir(workdir: Path) -> Path:
    """The work directory, made if missing; one storprof made is removed again at exit if empty."""
    workdir = workdir.resolve()
    if not workdir.exists():
        workdir.mkdir(parents=True)
        atexit.register(lambda: workdir.rmdir() if workdir.is_dir() and not any(workdir.iterdir()) else None)
    return workdir


def _execute(driver_list, jobs, placements, repeat, workdir, out, docker_host, image, storage_opts,
             layer_plan, fmt, quiet, started, meta, probes: dict | None = None, done: frozenset | None = None,
             fio_timeout: float = 3600) -> None:
    """Shared by sweep and layers: resolve the specs, check the machine, run, print the tables."""
    storage_opts = [drivers.check_storage_opt(o) for o in storage_opts]
    if image is not None and not IMAGE_REF.fullmatch(image):
        raise UserError(f"--image takes an image reference such as storprof-bench:dockerfile, got {image!r}")
    if docker_host is not None and not DOCKER_HOST.fullmatch(docker_host):
        raise UserError(f"--docker-host takes unix:///path/to/docker.sock, tcp://host:port or ssh://user@host, "
                        f"got {docker_host!r}")
    if not docker_host:
        require("dockerd")
        if os.geteuid() != 0:
            raise StorprofError("ephemeral daemons need root: run as root, or attach to a running "
                                "daemon with --docker-host")
        workdir = _make_workdir(workdir)
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
        workdir = _make_workdir(workdir)      # only the run's ownership record goes there

    out = out or results.default_out_dir()
    config = SweepConfig(specs=specs, jobs=jobs, placements=placements, repeat=repeat,
                         workdir=workdir, docker_host=docker_host, image=image,
                         storage_opts=list(storage_opts), layers=layer_plan, done=done or frozenset(),
                         fio_timeout=fio_timeout,
                         **(probes or {}))
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
                                       **results.tool_versions(), **meta}, resume=done is not None)
    progress = SweepProgress("quiet" if quiet else "auto")
    previous = {sig: signal.signal(sig, _on_sigterm) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        outcomes = Sweep(config, store, progress.message, progress.cell_done, progress.add_total).run()
    except (KeyboardInterrupt, _Terminated):
        progress.close()
        click.echo(f"storprof: interrupted; finished runs are kept in {store.dir}/{results.RESULTS_FILE} "
                   f"(continue with --resume {store.dir})", err=True)
        sys.exit(130)
    finally:
        progress.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

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
    records = results.read_records(results_dir)
    over = report.overhead(runs) if not runs.empty else runs
    ops, slopes = report.layer_tables(records)
    if write:
        if not runs.empty:
            report.write_tables(over, status, results_dir)
        if not ops.empty:
            report.write_layer_tables(ops, slopes, results_dir)
    if fmt in ("csv", "json"):
        click.echo(report.machine_readable(over, ops, slopes, status, fmt))
        return
    fmt = "pipe" if fmt == "markdown" else fmt
    if not runs.empty:
        click.echo(report.format_table(over, fmt))
        click.echo(report.table_notes(over))
    if not ops.empty:
        click.echo("")
        click.echo(report.format_layers(ops, slopes, fmt))
    click.echo("")
    click.echo(report.format_driver_status(status, fmt))


@main.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
              help="The work directory the killed runs used.")
@one_line_errors
def clean(workdir: Path):
    """Remove what killed runs left (daemons, mounts, loop devices, files), from their state records."""
    from .state import clean as clean_workdir
    if os.geteuid() != 0:
        raise StorprofError("clean stops daemons and unmounts filesystems: run it as root")
    report = clean_workdir(workdir, progress=lambda line: click.echo(line, err=True))
    running = f"; {len(report.running)} still running, not touched" if report.running else ""
    if report.problems:
        raise StorprofError(f"could not remove everything: {report.problems[0]}"
                            + (f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""))
    if report.cleaned:
        click.echo(f"removed the leftovers of {len(report.cleaned)} run(s): {', '.join(report.cleaned)}{running}")
    else:
        click.echo(f"nothing to clean in {workdir}{running}")


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True)
@one_line_errors
def table(results_dir: Path, fmt: str):
    """Print the overhead table of a results directory again."""
    _print_tables(results_dir, fmt, write=False)


@main.command("report")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where report.md and report.html go [RESULTS_DIR].")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True,
              help="Style of the table printed on the terminal.")
@one_line_errors
def report_cmd(results_dir: Path, out: Path | None, fmt: str):
    """Write report.md and a self-contained report.html (tables, charts, flags, the machine)."""
    from .htmlreport import write_report
    md, page = write_report(results_dir, out)
    _print_tables(results_dir, fmt, write=False)
    click.echo(f"\nReport: {page}  (and {md})")


@main.command("compare")
@click.argument("a_dir", type=click.Path(path_type=Path))
@click.argument("b_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also list the rows that are not significant.")
@one_line_errors
def compare_cmd(a_dir: Path, b_dir: Path, fmt: str, show_all: bool):
    """Did B get faster or slower than A, and is it real? (Welch's t-test on the repeats, 95%)"""
    from .compare import compare, summary_line
    table = compare(results.load_runs(a_dir), results.load_runs(b_dir))
    shown = table if show_all else table[~table["verdict"].isin(["not significant"])]
    click.echo(report.format_comparison(shown, fmt))
    click.echo(summary_line(table) + ("" if show_all else " (--all lists the rest)"))


if __name__ == "__main__":
    main()
