"""What every command shares, declared once: the options several commands take (each command
gives its own help), one-line errors, and printing what the views made."""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

import click

from storprof.errors import StorprofError, UserError
from storprof.results.text import one_line, printable
from storprof.stats.intervals import DEFAULT_PRECISION

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


def precision_option(help: str):
    return click.option("--precision", type=str, help=help)


def budget_option(help: str):
    return click.option("--budget", type=click.FloatRange(0.5, 10080), help=help)


def parse_precision(text: str | None, budget_minutes: float | None) -> tuple[float | None, float | None]:
    """(precision target, budget in seconds) from --precision and --budget (minutes): adaptive
    rounds need one or the other; a budget alone aims at the default target."""
    budget = budget_minutes * 60 if budget_minutes else None
    if text is None:
        return (DEFAULT_PRECISION if budget is not None else None), budget
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(%?)", text.strip())
    value = float(match.group(1)) / (100 if match.group(2) else 1) if match else -1.0
    if not 0.005 <= value <= 0.5:
        raise UserError(f"--precision takes a relative half-width from 0.5% to 50% (such as 5% or 0.05), got {text!r}")
    return value, budget


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
