"""The storprof command line: parse options, call one function, turn errors into one line."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import os
import re
import shlex
import signal
import sys
import textwrap
import time
import warnings
from pathlib import Path

import click

from storprof import __version__, results
from storprof.engine import drivers
from storprof.engine.daemon import DOCKER_HOST, AttachedDaemon
from storprof.engine.engines import all_engines
from storprof.errors import StorprofError, UserError, first_line
from storprof.harness.layout import new_run_id
from storprof.harness.plan import (
    PROBES,
    QUICK,
    THOROUGH,
    JobSettings,
    SweepPlan,
    load_jobs,
    probe_plans,
    quick_sweep_time,
)
from storprof.harness.progress import SweepProgress
from storprof.harness.sweep import Sweep
from storprof.host import backing, safepath
from storprof.host.cpu import fio_cpus
from storprof.host.mounts import host_fs_type
from storprof.host.proc import require
from storprof.results import ResultSet
from storprof.results.records import DriverRecord, NetRecord
from storprof.results.text import one_line, printable
from storprof.stats.summary import DEFAULT_PRECISION, layer_tables, noise_floor, summarize
from storprof.storage.fio.job import builtin_job_names
from storprof.storage.fio.options import ALLOWED, MAX_SECONDS, refusable_by_flag
from storprof.storage.fio.placements import AA, PLACEMENTS
from storprof.storage.layers import QUICK_PLAN, LayerPlan
from storprof.storage.probes.deepstack import parse_depths
from storprof.views import own_views, result_files, tables

# Root's own places: work and state below /var/lib/storprof, runtime below /run/storprof (layout.py).
DEFAULT_WORKDIR = Path("/var/lib/storprof/work")
# Seconds of a --budget kept back for reading the results and printing the tables.
TABLES_RESERVE = 5.0

# What --image and --docker-host take: an image reference, and a daemon address.
IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/-]{0,200}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
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
            click.echo(f"storprof: {one_line(str(e))}", err=True)
            sys.exit(e.exit_code)
    return wrapper


def _say(text: str = "", err: bool = False) -> None:
    """Print what the views made of a results directory: its strings are input (text.py)."""
    click.echo(printable(text), err=err)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class OneLineErrors(click.Group):
    """click's usage errors (a bad option value, an unknown option) as one line too, like every
    other bad input: `storprof: <what is wrong> (see storprof <command> --help)`, exit 2."""

    def main(self, args=None, prog_name=None, **kwargs):  # type: ignore[override]  # always standalone
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
    warnings.formatwarning = lambda message, *args, **kwargs: f"storprof: warning: {one_line(str(message))}\n"


@main.command("drivers")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
              help="Where loop files would be made (decides the host filesystem).")
@one_line_errors
def drivers_cmd(workdir: Path):
    """List every known driver spec with `ok` or why this host cannot run it."""
    host_fs = host_fs_type(workdir)
    facts = drivers.host_facts(host_fs)
    rows = []
    for spec in drivers.default_specs(host_fs, list(facts.engines)):
        reason = drivers.unavailable(spec, facts=facts)
        rows.append(DriverRecord(run_id="", driver_spec=str(spec), driver=spec.driver, fs=spec.fs,
                                 status="ok" if not reason else "skipped", reason=reason or spec.info.note))
    click.echo(tables.format_driver_status(rows))


@main.command("setup")
@click.option("--check", is_flag=True, help="Install nothing: say what is missing and what each missing part costs "
              "(exit 1 when something is).")
@click.option("--tests", is_flag=True, help="Also what the test suite needs (chromium).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="--check's output.")
@one_line_errors
def setup_cmd(check: bool, tests: bool, fmt: str):
    """Install the Debian packages storprof needs and fetch a Docker engine with the containerd image
    store into storprof's cache (STORPROF_CACHE, default /var/cache/storprof); safe to run again."""
    from storprof.host import setup
    host_fs = host_fs_type(DEFAULT_WORKDIR)
    if not check:
        setup.run(click.echo, tests, host_fs)
        return
    found = setup.check(tests, host_fs)
    if fmt == "json":
        click.echo(json.dumps(found.to_json(), indent=2))
    for line in found.lines() if fmt == "text" else []:
        pad = " " * (len(line) - len(line.lstrip()) + 2)
        click.echo(textwrap.fill(line, width=tables.COMPACT_WIDTH, subsequent_indent=pad))
    sys.exit(1 if found.missing else 0)


@main.group("engines", invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: the facts a script decides on (is there an engine with the containerd image store?).")
@click.pass_context
@one_line_errors
def engines_cmd(ctx, fmt: str):
    """List the Docker engines this host can run: the system's dockerd and fetched ones."""
    if ctx.invoked_subcommand is not None:
        return
    from storprof.engine.engines import CONTAINERD_STORE_SINCE, as_json, cache_dir
    if fmt == "json":
        click.echo(json.dumps(as_json(all_engines(), cache_dir()), indent=2))
        return
    rows = [[e.name, e.version_text, e.containerd_version or "-",
             "graphdrivers" + (", containerd image store" if e.containerd_store else ""), e.source]
            for e in all_engines()]
    if not rows:
        raise StorprofError("no Docker engine here: install docker.io, or run storprof engines fetch")
    click.echo(tables.tabulate(rows, headers=["engine", "dockerd", "containerd", "image stores", "from"],
                               disable_numparse=True))
    if not any(r[3].endswith("store") for r in rows):
        click.echo(f"\nNo engine with the containerd image store (Docker {CONTAINERD_STORE_SINCE[0]} or later): "
                   "storprof setup (or storprof engines fetch) gets one from Debian's packages.")


@engines_cmd.command("fetch")
@click.option("--suite", default="unstable", show_default=True, type=click.Choice(["unstable", "testing", "trixie"]),
              help="The Debian suite whose docker.io and containerd are taken.")
@one_line_errors
def engines_fetch(suite: str):
    """Download a newer Docker and containerd from Debian's packages into storprof's cache
    (STORPROF_CACHE/engines, default /var/cache/storprof/engines); the system's packages are not touched."""
    from storprof.engine.engines import fetch
    engine, new = fetch(suite=suite, say=lambda line: click.echo(line, err=True))
    click.echo(f"{'fetched' if new else 'already had'} Docker {engine.version_text} with containerd "
               f"{engine.containerd_version or '?'}: {engine.source}")


@main.command()
@click.option("--drivers", "driver_list", help="Comma-separated specs, e.g. overlay2,overlay2@xfs,vfs "
              "(default: every known spec; those this host cannot run are reported as skipped).")
@click.option("--jobs", "job_list", help="Comma-separated built-in job names, paths of .fio files, or the "
              "union probes copyup, deep-stack, lookup, union-ops (small-file appends, a directory rename, a chown), "
              "page-cache, snapbench (containerd's snapshotter benchmark), max-depth and daemon-start "
              "(default: every built-in job and every probe).")
@click.option("--placements", "placement_list",
              help="Where fio runs: host, union, volume, bind, and host-aa (the host run again, an A/A control) "
              "[the first four; --quick: host,union,bind,host-aa].")
@click.option("--size", help="fio file size per placement (e.g. 256m, 2g); overrides the job files.")
@click.option("--runtime", type=float, help="Seconds each fio run measures; overrides the job files.")
@click.option("--ramp-time", type=float, help="Seconds fio runs before measuring.")
@click.option("--repeat", type=click.IntRange(1, 100), help="Runs of each (driver, placement, job) [3].")
@click.option("--quick", is_flag=True, help=f"The README's sweep, {quick_sweep_time()} on the development machine: "
              "64m files, 0.5 s runs, 3 repeats of every cell then extra rounds towards ±5% while --budget 8 allows, "
              "random read, random write and fsync jobs, the union probes, placements host,union,bind,host-aa.")
@click.option("--copyup-sizes", help="MiB of the lower-layer files the copyup probe writes into [64,512; quick 64].")
@click.option("--stack-depths", help="Layers of the deep-stack images ('max' = 120, the deepest Docker chains) "
              "[1,16,64,max; quick 1,32].")
@click.option("--lookup-files", type=int, help="Files in the lower layer the lookup probe stats, cold then warm "
              "[20000; quick 2000].")
@click.option("--max-depth-ceiling", type=int, help="The deepest image the max-depth search tries "
              "(2-500) [500; quick 126].")
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
@click.option("--precision", type=str, help="Aim every ratio's 95% interval at ±this (e.g. 5% or 0.05): after "
              "--repeat rounds, extra rounds go to the cells furthest from it [5%; off without --budget or "
              "--precision].")
@click.option("--budget", type=click.FloatRange(0.5, 10080), help="Minutes the sweep may take: shared out among "
              "the specs, each spends what is left of its share on extra rounds [--quick: 8].")
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
          stack_depths, lookup_files, max_depth_ceiling, workdir, out, resume_dir, docker_host, image, cpus,
          storage_opts, precision, budget, allow_options, fio_timeout, fmt, no_layers, quiet):
    """Run fio on the host and in containers for each storage driver, and print the overhead."""
    started = time.monotonic()
    preset = QUICK if quick else THOROUGH
    if max_depth_ceiling is not None:
        preset = dataclasses.replace(preset, max_depth=dataclasses.replace(preset.max_depth, ceiling=max_depth_ceiling))
    settings = _job_settings(size or preset.size, runtime if runtime is not None else preset.runtime,
                             ramp_time if ramp_time is not None else preset.ramp_time, cpus, allow_options)
    placements = _placements(placement_list) if placement_list else preset.placements
    if docker_host and AA in placements:
        if placement_list:
            raise UserError(f"the {AA} control runs on the host baseline, which an attached daemon does not have")
        placements = tuple(p for p in placements if p != AA)
    require("fio")
    names = _split(job_list) or list(preset.jobs or [*builtin_job_names(), *PROBES])
    probes = probe_plans(names, placements,
                         _sizes(copyup_sizes, "--copyup-sizes") if copyup_sizes else preset.copyup_sizes,
                         parse_depths(stack_depths) if stack_depths else preset.stack_depths,
                         lookup_files if lookup_files is not None else preset.lookup_files, preset)
    plan = SweepPlan(specs=[], jobs=load_jobs(names, settings), placements=placements,
                     repeat=repeat or preset.repeat, workdir=workdir, docker_host=docker_host, image=image,
                     fio_timeout=fio_timeout, storage_opts=list(storage_opts), **probes,
                     layers=None if no_layers else preset.layers)
    plan.precision, plan.budget_seconds = _precision(precision, budget, preset)
    plan.aa_jobs = None if placement_list else preset.aa_jobs
    if resume_dir and out:
        raise UserError("--resume continues in its own directory; leave out --out")
    meta = {"quick": quick, "fio_cpus_allowed": settings.cpus_allowed, "allowed_options": sorted(set(allow_options)),
            "fio_timeout": fio_timeout, "precision": plan.precision, "budget_seconds": plan.budget_seconds}
    _execute(plan, driver_list, resume_dir or out, meta, fmt, quiet, started, resume=bool(resume_dir))


def _precision(text: str | None, budget_minutes: float | None, preset) -> tuple[float | None, float | None]:
    """(precision target, budget in seconds): adaptive repeats need one or the other."""
    budget = budget_minutes if budget_minutes is not None else preset.budget_minutes
    if text is None:
        return (DEFAULT_PRECISION if budget is not None else None), (budget * 60 if budget else None)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(%?)", text.strip())
    value = float(match.group(1)) / (100 if match.group(2) else 1) if match else -1.0
    if not 0.005 <= value <= 0.5:
        raise UserError(f"--precision takes a relative half-width from 0.5% to 50% (such as 5% or 0.05), got {text!r}")
    return value, (budget * 60 if budget else None)


def _job_settings(size, runtime, ramp_time, cpus, allow_options) -> JobSettings:
    """The values the sweep forces into every job, checked against what they may be."""
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
    return JobSettings(size, runtime, ramp_time, fio_cpus(cpus), tuple(allow_options))


def _placements(text: str) -> tuple[str, ...]:
    placements = tuple(_split(text))
    unknown = [p for p in placements if p not in PLACEMENTS]
    if unknown or not placements:
        raise UserError(f"unknown placement {', '.join(unknown) or '(none)'}; choose from: {', '.join(PLACEMENTS)}")
    return placements


def _make_workdir(workdir: Path, on_disk: bool = True) -> Path:
    """The work directory, made if missing; one storprof made is removed again at exit if empty."""
    workdir, made = backing.make_workdir(workdir, on_disk)
    if made:
        atexit.register(lambda: workdir.rmdir() if workdir.is_dir() and not any(workdir.iterdir()) else None)
    return workdir


def _check_values(plan: SweepPlan) -> None:
    plan.storage_opts = [drivers.check_storage_opt(o) for o in plan.storage_opts]
    if plan.image is not None and not IMAGE_REF.fullmatch(plan.image):
        raise UserError(f"--image takes an image reference such as storprof-bench:dockerfile, got {plan.image!r}")
    if plan.docker_host is not None and not DOCKER_HOST.fullmatch(plan.docker_host):
        raise UserError(f"--docker-host takes unix:///path/to/docker.sock, tcp://host:port or ssh://user@host, "
                        f"got {plan.docker_host!r}")


def _ready(plan: SweepPlan, driver_list: str | None) -> None:
    """The machine can run the plan: dockerd, root, a work directory on a disk, the specs, the room
    one spec needs; or, attached, a daemon that answers. Nothing is made but the work directory."""
    _check_values(plan)
    if plan.docker_host:
        if driver_list:
            raise UserError("--drivers picks ephemeral daemons; with --docker-host the daemon's own driver is profiled")
        AttachedDaemon(plan.docker_host).stop()    # unreachable: say so before making a results directory
        plan.workdir = _make_workdir(plan.workdir, on_disk=False)   # only the run's ownership record goes there
        return
    require("dockerd")
    if os.geteuid() != 0:
        raise StorprofError("ephemeral daemons need root: run as root, or attach to a running "
                            "daemon with --docker-host")
    plan.workdir = _make_workdir(plan.workdir)
    backing.check_workdir(plan.workdir)
    host_fs = host_fs_type(plan.workdir)
    engines = all_engines()
    plan.specs = ([drivers.DriverSpec.parse(t, host_fs, engines) for t in _split(driver_list)]
                  or drivers.default_specs(host_fs, engines))
    if plan.layers:
        for spec in plan.specs:
            plan.layers.validate(spec.driver)
    backing.require_free_space(plan.workdir, plan.backing_size_bytes(),
                               "one driver's data root, fio files, images and layers "
                               "(use a smaller --size or --layer-sizes)")


def _plan_meta(plan: SweepPlan) -> dict:
    return {"command": shlex.join(sys.argv), "run_id": plan.run_id, "placements": list(plan.placements),
            "jobs": [j.name for j in plan.jobs], "repeat": plan.repeat,
            "layers": vars(plan.layers) if plan.layers else None,
            "copyup": vars(plan.copyup) if plan.copyup else None,
            "deep_stack": vars(plan.deep_stack) if plan.deep_stack else None,
            "lookup": vars(plan.lookup) if plan.lookup else None,
            **{name: vars(p) if p else None for name, p in (
                ("union_ops", plan.union_ops), ("page_cache", plan.page_cache), ("snapbench", plan.snapbench),
                ("max_depth", plan.max_depth), ("daemon_start", plan.daemon_start))},
            "drivers": [str(s) for s in plan.specs] or [f"attached:{plan.docker_host}"],
            **results.tool_versions()}


def _execute(plan: SweepPlan, driver_list: str | None, out: Path | None, meta: dict, fmt: str, quiet: bool,
             started: float, resume: bool = False) -> None:
    """Shared by sweep and layers: check the machine, run, print the tables."""
    done: frozenset = frozenset()
    if resume:
        assert out is not None
        previous = ResultSet.load(out)
        if not (Path(out) / results.META_FILE).is_file():
            raise UserError(f"{out} is not a storprof results directory (no {results.META_FILE})")
        plan.check_resumable(previous)
        done = plan.done_keys(previous)
    _ready(plan, driver_list)
    if plan.budget_seconds is not None:      # what checking took counts; keep time to print the tables
        plan.budget_seconds = max(30.0, plan.budget_seconds - (time.monotonic() - started) - TABLES_RESERVE)
    store = results.ResultsStore(out or results.default_out_dir(), {**_plan_meta(plan), **meta}, resume=resume)
    outcomes = _interruptible(store, quiet, lambda progress: Sweep(plan, store, progress, done=done).run())
    result_set = ResultSet.load(store.dir)
    if fmt in ("csv", "json"):
        _print_tables(result_set, fmt)
    else:
        _write_tables(result_set)
        _print_answer(result_set)
    click.echo(f"\nResults: {store.dir}  (overhead.csv/.md, layers.csv/.md, results.jsonl, raw/)")
    click.echo(f"Every cell: storprof table {store.dir}   Charts: storprof report {store.dir}")
    click.echo(f"Total wall time: {time.monotonic() - started:.0f} s")
    if not any(o.status == "ok" for o in outcomes):
        raise StorprofError("no driver could be measured (see the reasons above)")


def _interruptible(store: results.ResultsStore, quiet: bool, run):
    """`run(progress)` under a progress bar. Ctrl-C, SIGTERM and SIGHUP unwind every teardown, keep
    what finished and say how to go on."""
    progress = SweepProgress("quiet" if quiet else "auto")
    previous_handlers = {sig: signal.signal(sig, _on_sigterm) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return run(progress)
    except (KeyboardInterrupt, _Terminated):
        progress.close()
        click.echo(f"storprof: interrupted; finished runs are kept in {store.dir}/{results.RESULTS_FILE} "
                   f"(continue with --resume {store.dir})", err=True)
        sys.exit(130)
    finally:
        progress.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)


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
@click.option("--large-images", help="MiB of files added to the bench image for the large images "
              "[128,256; quick 64,192].")
@click.option("--quick", is_flag=True, help="Small sizes and few samples.")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Results directory.")
@click.option("--docker-host", envvar="DOCKER_HOST", help="Attach to this daemon instead.")
@click.option("--image", help="Use this bench image instead of the offline one.")
@click.option("--storage-opt", "storage_opts", multiple=True, metavar="DRIVER.KEY=VALUE")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True)
@click.option("--quiet", is_flag=True)
@one_line_errors
def layers(driver_list, samples, layer_sizes, depths, bulk, large_images, quick, workdir, out, docker_host,
           image, storage_opts, fmt, quiet):
    """Time layer creation and deletion per storage driver, and how the cost grows."""
    started = time.monotonic()
    base = QUICK_PLAN if quick else LayerPlan()
    plan = LayerPlan(samples=samples if samples is not None else base.samples,
                     layer_sizes_mib=_sizes(layer_sizes, "--layer-sizes") if layer_sizes else base.layer_sizes_mib,
                     depths=_sizes(depths, "--depths") if depths else base.depths,
                     bulk=bulk if bulk is not None else base.bulk,
                     large_images_mib=(_sizes(large_images, "--large-images") if large_images
                                       else base.large_images_mib))
    plan.validate("any")
    sweep_plan = SweepPlan(specs=[], jobs=[], placements=("host",), repeat=1, workdir=workdir,
                           docker_host=docker_host, image=image, storage_opts=list(storage_opts), layers=plan)
    _execute(sweep_plan, driver_list, out, {"quick": quick}, fmt, quiet, started)


def _print_answer(result_set: ResultSet) -> None:
    """The end of a sweep, within 120 columns and with the answer last, where the terminal stops:
    what was skipped, a sentence per spec, the compact table, the rankings, how sure it all is."""
    from storprof.views.verdicts import rankings, spec_summaries
    runs, status = result_set.runs, result_set.drivers
    precision = float(result_set.meta.get("precision") or DEFAULT_PRECISION)
    over = summarize(runs, precision) if not runs.empty else runs
    ops, _ = layer_tables(result_set.layers)
    wrap = functools.partial(textwrap.fill, width=tables.COMPACT_WIDTH, subsequent_indent="  ")
    not_run = tables.not_measured_lines(status)
    if not_run:
        _say("Not measured:")
    for line in not_run:
        _say(textwrap.fill(line, width=tables.COMPACT_WIDTH, initial_indent="  ", subsequent_indent="    "))
    if over.empty:
        return
    _say("")
    for s in spec_summaries(over, ops, precision):
        _say(wrap(f"{s.spec} (Docker {s.docker}): {s.sentence}"))
    _say("")
    _say(tables.compact_table(over, ops))
    _say(wrap(tables.COMPACT_NOTE))
    used = {c for f in over["flags"] for c in f if c in "†§"}
    for note in tables.flag_notes(used):
        _say(wrap(note))
    _say("")
    for line in rankings(over, ops):
        _say(wrap(line))
    _say(wrap(tables.answers_line(over, precision).split("\n")[0]))
    _say(wrap(tables.noise_floor_line(noise_floor(runs, over))))


def _print_tables(result_set: ResultSet, fmt: str, write: bool = True) -> None:
    """The tables of a results directory on the terminal (and, after a sweep, as files beside it)."""
    if result_set.of(NetRecord):
        _print_net(result_set, fmt, write)
        if result_set.runs.empty and not result_set.layers:
            return
    runs, status = result_set.runs, result_set.drivers
    precision = float(result_set.meta.get("precision") or DEFAULT_PRECISION)
    over = summarize(runs, precision) if not runs.empty else runs
    ops, slopes = layer_tables(result_set.layers)
    if write:
        _write_tables(result_set)
    if fmt in ("csv", "json"):
        _say(tables.machine_readable(over, ops, slopes, status, fmt))
        return
    fmt = "pipe" if fmt == "markdown" else fmt
    if not runs.empty:
        _say(tables.format_table(over, fmt))
        _say(tables.table_notes(over))
        _say("")
        _say(tables.answers_line(over, precision))
        _say(tables.noise_floor_line(noise_floor(runs, over)))
    if not ops.empty:
        _say("")
        _say(tables.format_layers(ops, slopes, fmt))
    own = own_views.format_own_views(runs, fmt) if not runs.empty else ""
    if own:
        _say("")
        _say(own.rstrip("\n"))
    _say("")
    _say(tables.format_driver_status(status, fmt))


def _write_tables(result_set: ResultSet) -> None:
    """overhead.csv/.md and layers.csv/.md beside the results: the wide tables, always."""
    precision = float(result_set.meta.get("precision") or DEFAULT_PRECISION)
    if not result_set.runs.empty:
        result_files.write_tables(summarize(result_set.runs, precision), result_set.drivers, result_set.dir,
                            result_set.runs)
    ops, slopes = layer_tables(result_set.layers)
    if not ops.empty:
        result_files.write_layer_tables(ops, slopes, result_set.dir)


@main.command("net")
@click.option("--paths", "path_list", help="Comma-separated network paths [all]: "
              "host-network, proxy-loopback, dnat-loopback, dnat-bridge, bridge (the host baseline always runs).")
@click.option("--workloads", "workload_list",
              help="Comma-separated workloads [all]: throughput, latency, connect, http.")
@click.option("--engines", "engine_list", help="Comma-separated Docker engines (see storprof engines) "
              "[the newest one here].")
@click.option("--seconds", type=int, help="Seconds each client run measures [5; quick 2].")
@click.option("--repeat", type=int, help="Rounds of every path and workload [5; quick 3].")
@click.option("--quick", is_flag=True, help="2-second runs, 3 rounds: about 4 minutes.")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
              help="Where the daemons' data roots and the run's scratch files go.")
@click.option("--out", type=click.Path(path_type=Path), help="Results directory [storprof-results/<time>].")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path),
              help="Continue an interrupted run in its results directory (runs that ended ok are kept).")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar and no line per finished run.")
@one_line_errors
def net_cmd(path_list, workload_list, engine_list, seconds, repeat, quick, workdir, out, resume_dir, fmt, quiet):
    """What Docker's network paths cost: docker-proxy, iptables DNAT, the bridge and host networking,
    each against the same server on the host, in network namespaces of storprof's own."""
    from storprof.network import plan as netplan
    from storprof.network.plan import NetPlan, NetSettings, parse_choice
    from storprof.network.run import BASE_TOOLS, NetRun, done_keys, missing_tools
    started = time.monotonic()
    preset = netplan.QUICK if quick else netplan.THOROUGH
    paths = parse_choice(path_list, {p: v for p, v in netplan.PATHS.items() if p != netplan.HOST}, "paths")
    workloads = parse_choice(workload_list, netplan.WORKLOADS, "workloads")
    if seconds is not None and not 1 <= seconds <= netplan.MAX_SECONDS:
        raise UserError(f"--seconds must be a whole number from 1 to {netplan.MAX_SECONDS}")
    if repeat is not None and not 1 <= repeat <= netplan.MAX_REPEAT:
        raise UserError(f"--repeat must be a whole number from 1 to {netplan.MAX_REPEAT}")
    if resume_dir and out:
        raise UserError("--resume continues in its own directory; leave out --out")
    if os.geteuid() != 0:
        raise UserError("storprof net makes network namespaces and starts dockerd: run it as root")
    missing = missing_tools(BASE_TOOLS)
    if missing:
        raise UserError("missing " + ", ".join(f"{t} (package {p})" for t, p in missing.items()))
    names = _net_engines(engine_list)
    settings = NetSettings(seconds=seconds or preset.seconds, repeat=repeat or preset.repeat)
    meta = {"command": "net", "net": {"paths": paths, "workloads": workloads, "engines": names,
                                      "seconds": settings.seconds, "repeat": settings.repeat, "quick": quick}}
    previous = _net_previous(resume_dir, settings.seconds) if resume_dir else None
    workdir = _make_workdir(workdir, on_disk=True)
    plan = NetPlan(engines=names, paths=paths, workloads=workloads, settings=settings,
                   run_id=new_run_id())
    done = done_keys(previous, plan) if previous is not None else frozenset()
    store = results.ResultsStore(resume_dir or out or results.default_out_dir(), meta, resume=bool(resume_dir))
    records = _interruptible(store, quiet, lambda progress: NetRun(plan, store, progress, workdir, done=done).run())
    result_set = ResultSet.load(store.dir)
    _print_net(result_set, fmt)
    click.echo(f"\nResults: {store.dir}  (net.md, results.jsonl, raw/net/)")
    click.echo(f"Again: storprof table {store.dir}   Charts: storprof report {store.dir}")
    click.echo(f"Total wall time: {time.monotonic() - started:.0f} s")
    if not any(r.status == "ok" for r in records) and not done:
        raise StorprofError("no network path could be measured (see the reasons above)")


def _net_engines(engine_list: str | None) -> list[str]:
    """The engines --engines names (each one this host has), or the newest one here."""
    from storprof.engine.engines import find as find_engine
    engines = all_engines()
    if not engines:
        raise UserError("no Docker engine here: install docker.io, or run storprof engines fetch")
    names = _split(engine_list) if engine_list is not None else [max(engines, key=lambda e: e.version).name]
    if not names:
        raise UserError("--engines is empty; see storprof engines")
    return [find_engine(n, engines).name for n in dict.fromkeys(names)]


def _net_previous(resume_dir: Path, seconds: int) -> ResultSet:
    """The results --resume continues: storprof net's, measured with the same --seconds."""
    previous = ResultSet.load(resume_dir)
    before = previous.meta.get("net") or {}
    if not before:
        raise UserError(f"{resume_dir} holds no storprof net results to resume")
    if before.get("seconds") != seconds:
        raise UserError(f"{resume_dir} was measured with --seconds {before.get('seconds')}; resume with the same")
    return previous


def _print_net(result_set: ResultSet, fmt: str, write: bool = True) -> None:
    """The network verdicts, then the table (and net.md beside the results)."""
    from storprof.stats.network import net_rows
    from storprof.views import network as netviews
    rows = net_rows(result_set.of(NetRecord))
    if not rows:
        return
    if write:
        safepath.replace(result_set.dir / "net.md", netviews.markdown(rows))
    wrap = functools.partial(textwrap.fill, width=tables.COMPACT_WIDTH, subsequent_indent="  ")
    if fmt in ("csv", "json"):
        _say(netviews.machine_readable(rows, fmt))
        return
    _say("")
    for line in netviews.verdict_lines(rows):
        _say(wrap(line))
    _say("")
    _say(netviews.format_table(rows, "pipe" if fmt == "markdown" else fmt))
    _say(wrap(netviews.NOTE))


@main.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
              help="The work directory the killed runs used.")
@one_line_errors
def clean(workdir: Path):
    """Remove what killed runs left (daemons, mounts, loop devices, files), from their state records."""
    from storprof.harness.state import clean as clean_workdir
    if os.geteuid() != 0:
        raise StorprofError("clean stops daemons and unmounts filesystems: run it as root")
    workdir = safepath.require_safe(workdir, "work directory")
    cleaned = clean_workdir(workdir, progress=lambda line: click.echo(line, err=True))
    running = f"; {len(cleaned.running)} still running, not touched" if cleaned.running else ""
    for problem in cleaned.problems:
        click.echo(f"storprof: clean: {problem}", err=True)
    if cleaned.problems:
        raise StorprofError(f"clean left {len(cleaned.problems)} thing(s) as they were (listed above)")
    if cleaned.cleaned:
        click.echo(f"removed the leftovers of {len(cleaned.cleaned)} run(s): {', '.join(cleaned.cleaned)}{running}")
    else:
        click.echo(f"nothing to clean in {workdir}{running}")


def _views_of_input(fn):
    """For table, report and compare: every field is checked by type when read (recordcheck.py),
    but what a workload keeps in `params` is its own; a value there that no sweep writes (a depth
    that is a list, a missing key) is still one line, exit 2, saying so, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError, ArithmeticError) as e:
            raise UserError(f"the results hold a value no storprof sweep writes, so they cannot be shown "
                            f"({type(e).__name__}: {one_line(first_line(e))[:200]})") from None
    return wrapper


def _load_to_read(results_dir: Path) -> ResultSet:
    """A results directory for table, report and compare: read as input (results.py), and holding
    at least one record."""
    result_set = ResultSet.load(results_dir)
    if not result_set.records:
        raise UserError(f"{results_dir} holds no finished measurement (its {results.RESULTS_FILE} has no records)")
    return result_set


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True)
@one_line_errors
@_views_of_input
def table(results_dir: Path, fmt: str):
    """Print the overhead table of a results directory again."""
    _print_tables(_load_to_read(results_dir), fmt, write=False)


@main.command("report")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where report.md and report.html go [RESULTS_DIR].")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True,
              help="Style of the table printed on the terminal.")
@one_line_errors
@_views_of_input
def report_cmd(results_dir: Path, out: Path | None, fmt: str):
    """Write report.md and a self-contained report.html (tables, charts, flags, the machine)."""
    from storprof.views.report import write_report
    result_set = _load_to_read(results_dir)
    md, page = write_report(result_set, out)
    _print_tables(result_set, fmt, write=False)
    _say(f"\nReport: {page}  (and {md})")


@main.command("compare")
@click.argument("a_dir", type=click.Path(path_type=Path))
@click.argument("b_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="simple", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also list the rows that are not significant.")
@one_line_errors
@_views_of_input
def compare_cmd(a_dir: Path, b_dir: Path, fmt: str, show_all: bool):
    """Did B get faster or slower than A, and is it real? (Welch's t-test on the logs, FDR 5%)"""
    from storprof.stats.compare import compare, summary_line
    result = compare(_load_to_read(a_dir), _load_to_read(b_dir))
    table = result.table
    shown = table if show_all else table[~table["verdict"].isin(["not significant"])]
    for line in result.differences:
        _say(f"A and B differ in {line}", err=True)
    for line in result.left_out:
        _say(f"left out, not comparable: {line}", err=True)
    _say(tables.format_comparison(shown, fmt))
    _say(summary_line(table) + ("" if show_all else " (--all lists the rest)"))


if __name__ == "__main__":
    main()
