"""What every command shares, declared once: the options several commands take (each command
gives its own help), one-line errors, and printing what the views made."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from storprof.errors import StorprofError
from storprof.results.text import one_line, printable

# Root's own places: work and state below /var/lib/storprof, runtime below /run/storprof (layout.py).
DEFAULT_WORKDIR = Path("/var/lib/storprof/work")
# Terminal table styles (tabulate's, 'markdown' being its pipe style) and two for machines.
TABLE_FORMATS = ("simple", "plain", "github", "markdown", "grid", "pipe", "csv", "json")


def workdir_option(help: str | None = None):
    return click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
                        help=help)


def out_option(help: str):
    return click.option("--out", type=click.Path(path_type=Path), help=help)


def resume_option(help: str):
    return click.option("--resume", "resume_dir", type=click.Path(path_type=Path), help=help)


def format_option(help: str | None = None, choices: tuple[str, ...] = TABLE_FORMATS, default: str = "simple"):
    return click.option("--format", "fmt", type=click.Choice(choices), default=default, show_default=True, help=help)


def quiet_option(help: str | None = None):
    return click.option("--quiet", is_flag=True, help=help)


def drivers_option(help: str):
    return click.option("--drivers", "driver_list", help=help)


def docker_host_option(help: str):
    return click.option("--docker-host", envvar="DOCKER_HOST", help=help)


def image_option(help: str):
    return click.option("--image", help=help)


def storage_opt_option(help: str | None = None):
    return click.option("--storage-opt", "storage_opts", multiple=True, metavar="DRIVER.KEY=VALUE", help=help)


def results_dir_argument(name: str = "results_dir"):
    return click.argument(name, type=click.Path(path_type=Path))


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


def say(*blocks: str, err: bool = False) -> None:
    """Print what the views made of a results directory, a line (or block) at a time: its strings
    are input (text.py)."""
    for block in blocks:
        click.echo(printable(block), err=err)


def split(value: str | None) -> list[str]:
    """A comma-separated option's values."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]
