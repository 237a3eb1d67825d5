"""storprof sweep and storprof layers: options in, every value checked, the machine checked, one
frozen SweepPlan built from all of it, the run called, then the tables and the answer printed."""

from __future__ import annotations

import dataclasses
import re
import shlex
import sys
import time

import click

from storprof.cli.options import (
    budget_option,
    docker_host_option,
    drivers_option,
    format_option,
    image_option,
    one_line_errors,
    out_option,
    parse_precision,
    precision_option,
    quiet_option,
    resume_option,
    say,
    split,
    storage_opt_option,
    workdir_option,
)
from storprof.engine import drivers
from storprof.engine.daemon import DOCKER_HOST
from storprof.errors import StorprofError, UserError
from storprof.harness.plan import (
    PROBES,
    QUICK,
    THOROUGH,
    JobSettings,
    Preset,
    SweepPlan,
    load_jobs,
    probe_plans,
    quick_sweep_time,
)
from storprof.harness.timeaccount import STATISTICS
from storprof.host.cpu import fio_cpus
from storprof.host.proc import require
from storprof.operations import sweep as sweep_run
from storprof.results import ResultSet
from storprof.storage.fio.job import builtin_job_names
from storprof.storage.fio.options import ALLOWED, MAX_SECONDS, refusable_by_flag
from storprof.storage.fio.placements import AA, PLACEMENTS
from storprof.storage.layers import QUICK_PLAN, LayerPlan
from storprof.storage.probes.copyup import CopyUpPlan
from storprof.storage.probes.deepstack import DeepStackPlan, parse_depths
from storprof.storage.probes.lookup import LookupPlan
from storprof.views.result_files import write_result_tables
from storprof.views.result_summary import ResultSummary
from storprof.views.terminal import answer_blocks, table_blocks
from storprof.views.timeaccount import time_account_lines

# What --image takes: an image reference.
IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/-]{0,200}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?")


@click.command("sweep")
@drivers_option("Comma-separated specs, e.g. overlay2,overlay2@xfs,vfs "
                "(default: every known spec; those this host cannot run are reported as skipped).")
@click.option("--jobs", "job_list", help="Comma-separated built-in job names, paths of .fio files, or the "
              "union probes copyup, deep-stack, lookup, union-ops (small-file appends, a directory rename, a chown), "
              "page-cache, build (a docker build of many small files, step by step), postgres (pgbench against "
              "PostgreSQL on every placement), snapbench (containerd's "
              "snapshotter benchmark), max-depth and daemon-start (default: every built-in job and every probe; "
              "--quick: its jobs and the union probes but build).")
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
@workdir_option("Where data roots and loop files are made; must be on a real disk filesystem.")
@out_option("Results directory (default: a new ./storprof-results/<timestamp>).")
@resume_option("Continue the sweep whose results are in this directory: run only the cells it lacks "
               "(give the same options as the first time).")
@docker_host_option("Attach to this daemon (URL, or DOCKER_HOST) instead of starting ephemeral ones.")
@image_option("Use this bench image (e.g. built from Dockerfile.bench) instead of "
              "importing one made from the host's fio.")
@click.option("--cpus", default="auto", show_default=True,
              help="CPUs fio runs on (fio cpus_allowed): auto = those not taking the disk's interrupts, "
              "none = no pinning, or a list such as 0-3.")
@storage_opt_option("Passed to the ephemeral dockerd of that driver as --storage-opt (repeatable).")
@precision_option("Aim every ratio's 95% interval at ±this (e.g. 5% or 0.05): after "
              "--repeat rounds, extra rounds go where one more round is most likely to answer a cell (a real "
              "difference, or within ±this), until each is answered or given up [5%; off without --budget or "
              "--precision].")
@budget_option("Minutes the sweep may take: shared out among "
              "the specs, daemons, images and base rounds included (runs past the second repeat are left out once a "
              "spec's share is spent); each spends what is left of its share on extra rounds [--quick: 9.5].")
@click.option("--allow-option", "allow_options", multiple=True, metavar="NAME",
              help="Let a fio option that storprof does not allow by default through in job files "
              "(repeatable; recorded in meta.json). fio still runs in its sandbox.")
@click.option("--fio-timeout", type=click.FloatRange(10, 86400), default=3600, show_default=True,
              help="Seconds after which a fio run is killed (a time-based run: its runtime and ramp plus a margin, "
              "if shorter).")
@format_option("Terminal table style.")
@click.option("--no-layers", is_flag=True, help="Skip layer create/delete timing (storprof layers).")
@quiet_option("No progress bar and no line per finished run.")
@one_line_errors
def sweep(driver_list, job_list, placement_list, size, runtime, ramp_time, repeat, quick, copyup_sizes,
          stack_depths, lookup_files, max_depth_ceiling, workdir, out, resume_dir, docker_host, image, cpus,
          storage_opts, precision, budget, allow_options, fio_timeout, fmt, no_layers, quiet):
    """Run fio on the host and in containers for each storage driver, and print the overhead."""
    started = time.monotonic()
    preset = QUICK if quick else THOROUGH
    settings = _job_settings(size or preset.size, runtime if runtime is not None else preset.runtime,
                             ramp_time if ramp_time is not None else preset.ramp_time, cpus, allow_options)
    placements = _placements(placement_list, preset, attached=bool(docker_host))
    require("fio")
    names = split(job_list) or list(preset.jobs or [*builtin_job_names(), *PROBES])
    probes = probe_plans(names, placements, preset,
                         _plan_options(preset, copyup_sizes, stack_depths, lookup_files, max_depth_ceiling))
    jobs = load_jobs(names, settings)
    target, budget_seconds = _precision(precision, budget, preset)
    if resume_dir and out:
        raise UserError("--resume continues in its own directory; leave out --out")
    previous = sweep_run.previous_results(resume_dir) if resume_dir else None
    storage_opts = _daemon_values(storage_opts, image, docker_host, driver_list)
    layers = None if no_layers else preset.plan("layers")
    machine = sweep_run.ready_machine(workdir, split(driver_list), docker_host, layers)
    plan = SweepPlan(specs=machine.specs, jobs=jobs, placements=placements, repeat=repeat or preset.repeat,
                     workdir=machine.workdir, docker_host=docker_host, image=image, fio_timeout=fio_timeout,
                     storage_opts=storage_opts, **probes, layers=layers, precision=target,
                     budget_seconds=sweep_run.remaining_budget(budget_seconds, started),
                     aa_jobs=None if placement_list else preset.aa_jobs)
    meta = {"quick": quick, "fio_cpus_allowed": settings.cpus_allowed, "allowed_options": sorted(set(allow_options)),
            "fio_timeout": fio_timeout, "precision": target, "budget_seconds": budget_seconds}
    _show(sweep_run.run_sweep(plan, resume_dir or out, meta, shlex.join(sys.argv), quiet, previous, started), fmt,
          started)


@click.command("layers")
@drivers_option("Comma-separated specs (default: every known spec).")
@click.option("--samples", type=int, help="Timed samples of each operation [20; quick 5].")
@click.option("--layer-sizes", help="MiB written before each timed commit [0,16,256; quick 0,16,64].")
@click.option("--depths", help="Image depths in layers [1,8,32; quick 1,4,8].")
@click.option("--bulk", type=int, help="Containers created then removed in a row [50; quick 10].")
@click.option("--large-images", help="MiB of files added to the bench image for the large images "
              "[128,256; quick 64,192].")
@click.option("--quick", is_flag=True, help="Small sizes and few samples.")
@workdir_option()
@out_option("Results directory.")
@docker_host_option("Attach to this daemon instead.")
@image_option("Use this bench image instead of the offline one.")
@storage_opt_option()
@format_option()
@quiet_option()
@one_line_errors
def layers(driver_list, samples, layer_sizes, depths, bulk, large_images, quick, workdir, out, docker_host,
           image, storage_opts, fmt, quiet):
    """Time layer creation and deletion per storage driver, and how the cost grows."""
    started = time.monotonic()
    base = QUICK_PLAN if quick else LayerPlan()
    layer_plan = LayerPlan(samples=samples if samples is not None else base.samples,
                           layer_sizes_mib=(_sizes(layer_sizes, "--layer-sizes") if layer_sizes
                                            else base.layer_sizes_mib),
                           depths=_sizes(depths, "--depths") if depths else base.depths,
                           bulk=bulk if bulk is not None else base.bulk,
                           large_images_mib=(_sizes(large_images, "--large-images") if large_images
                                             else base.large_images_mib))
    layer_plan.validate("any")
    storage_opts = _daemon_values(storage_opts, image, docker_host, driver_list)
    machine = sweep_run.ready_machine(workdir, split(driver_list), docker_host, layer_plan)
    plan = SweepPlan(specs=machine.specs, jobs=[], placements=("host",), repeat=1, workdir=machine.workdir,
                     docker_host=docker_host, image=image, storage_opts=storage_opts, layers=layer_plan)
    _show(sweep_run.run_sweep(plan, out, {"quick": quick}, shlex.join(sys.argv), quiet, started=started), fmt, started)


def _show(run: sweep_run.SweepRun, fmt: str, started: float) -> None:
    """The tables beside the results, then on the terminal the answer (or, for csv and json,
    every table), from one summary of the results; then, but for csv and json, where the time went."""
    with run.account.phase(STATISTICS):
        result_set = ResultSet.load(run.results_dir)
        summary = ResultSummary.of(result_set)
        write_result_tables(result_set, summary)
        machine = fmt in ("csv", "json")
        blocks = table_blocks(result_set, summary, fmt) if machine else answer_blocks(result_set, summary)
    account = run.finish_account()
    say(*blocks, *([] if machine else ["", *time_account_lines(account)]))
    click.echo(f"\nResults: {run.results_dir}  (overhead.csv/.md, layers.csv/.md, results.jsonl, raw/)")
    click.echo(f"Every cell: storprof table {run.results_dir}   Charts: storprof report {run.results_dir}")
    click.echo(f"Total wall time: {time.monotonic() - started:.0f} s")
    if not run.measured_any:
        raise StorprofError("no driver could be measured (see the reasons above)")


def _plan_options(preset: Preset, copyup_sizes, stack_depths, lookup_files, max_depth_ceiling) -> dict:
    """The workload plans that options change, by registered name."""
    plans = {"copyup": CopyUpPlan(_sizes(copyup_sizes, "--copyup-sizes")) if copyup_sizes else None,
             "deep-stack": DeepStackPlan(parse_depths(stack_depths)) if stack_depths else None,
             "lookup": LookupPlan(lookup_files) if lookup_files is not None else None,
             "max-depth": (dataclasses.replace(preset.plan("max-depth"), ceiling=max_depth_ceiling)
                           if max_depth_ceiling is not None else None)}
    return {name: plan for name, plan in plans.items() if plan}


def _precision(text: str | None, budget_minutes: float | None, preset: Preset) -> tuple[float | None, float | None]:
    """(precision target, budget in seconds): the preset's budget where --budget does not say."""
    return parse_precision(text, budget_minutes if budget_minutes is not None else preset.budget_minutes)


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


def _placements(text: str | None, preset: Preset, attached: bool) -> tuple[str, ...]:
    """--placements checked, or the preset's; attached, no A/A control (it runs on the host baseline)."""
    if not text:
        return tuple(p for p in preset.placements if p != AA) if attached else preset.placements
    placements = tuple(split(text))
    unknown = [p for p in placements if p not in PLACEMENTS]
    if unknown or not placements:
        raise UserError(f"unknown placement {', '.join(unknown) or '(none)'}; choose from: {', '.join(PLACEMENTS)}")
    if attached and AA in placements:
        raise UserError(f"the {AA} control runs on the host baseline, which an attached daemon does not have")
    return placements


def _daemon_values(storage_opts: tuple[str, ...], image: str | None, docker_host: str | None,
                   driver_list: str | None) -> list[str]:
    """--storage-opt (checked, as dockerd reads them), --image, --docker-host and --drivers with it."""
    checked = [drivers.check_storage_opt(o) for o in storage_opts]
    if image is not None and not IMAGE_REF.fullmatch(image):
        raise UserError(f"--image takes an image reference such as storprof-bench:dockerfile, got {image!r}")
    if docker_host is not None and not DOCKER_HOST.fullmatch(docker_host):
        raise UserError(f"--docker-host takes unix:///path/to/docker.sock, tcp://host:port or ssh://user@host, "
                        f"got {docker_host!r}")
    if docker_host and driver_list:
        raise UserError("--drivers picks ephemeral daemons; with --docker-host the daemon's own driver is profiled")
    return checked


def _sizes(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in split(text))
    except ValueError:
        raise UserError(f"{what} takes whole numbers separated by commas, got {text!r}") from None
    if not values:
        raise UserError(f"{what} needs at least one value")
    return values


COMMANDS = (sweep, layers)
