"""The `storprof` group: usage errors on one line, and every command group's commands."""

from __future__ import annotations

import sys
import warnings

import click

from storprof import __version__
from storprof.cli import maintenance, net, results, sweep
from storprof.results.text import one_line


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


for group in (sweep, net, results, maintenance):
    for command in group.COMMANDS:
        main.add_command(command)
