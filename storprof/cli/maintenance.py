"""The commands around the measurements: what this host can run (drivers, engines), setting it
up (setup, engines fetch), and cleaning up after killed runs (clean)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import click

from storprof.cli.options import DEFAULT_WORKDIR, format_option, one_line_errors, workdir_option
from storprof.engine.engines import all_engines
from storprof.errors import StorprofError
from storprof.host import safepath
from storprof.host.mounts import host_fs_type
from storprof.operations.maintenance import driver_status
from storprof.views import tables


@click.command("drivers")
@workdir_option("Where loop files would be made (decides the host filesystem).")
@one_line_errors
def drivers_cmd(workdir: Path):
    """List every known driver spec with `ok` or why this host cannot run it."""
    click.echo(tables.format_driver_status(driver_status(workdir)))


@click.command("setup")
@click.option("--check", is_flag=True, help="Install nothing: say what is missing and what each missing part costs "
              "(exit 1 when something is).")
@click.option("--tests", is_flag=True, help="Also what the test suite needs (chromium).")
@format_option("--check's output.", choices=("text", "json"), default="text")
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


@click.group("engines", invoke_without_command=True)
@format_option("json: the facts a script decides on (is there an engine with the containerd image store?).",
               choices=("table", "json"), default="table")
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


@click.command("clean")
@workdir_option("The work directory the killed runs used.")
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


COMMANDS = (drivers_cmd, setup_cmd, engines_cmd, clean)
