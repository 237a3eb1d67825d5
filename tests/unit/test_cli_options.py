"""The options several commands share are declared once, in cli/options.py, and every command
that takes one takes the same option (type, default), whatever help it gives."""

from __future__ import annotations

from pathlib import Path

import click

from storprof.cli import main
from storprof.cli.options import DEFAULT_WORKDIR, TABLE_FORMATS

CLI = Path(__file__).resolve().parents[2] / "storprof" / "cli"
SHARED = ("--workdir", "--out", "--resume", "--format", "--quiet", "--docker-host", "--image", "--storage-opt",
          "--drivers")


def _commands(group: click.Group, ctx: click.Context):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield command
        if isinstance(command, click.Group):
            yield from _commands(command, ctx)


def _options(name: str) -> list[click.Option]:
    ctx = click.Context(main)
    return [p for c in _commands(main, ctx) for p in c.params if isinstance(p, click.Option) and name in p.opts]


def test_no_command_module_declares_a_shared_option_itself():
    declared = {(path.name, name) for path in CLI.glob("*.py") for name in SHARED if f'"{name}"' in path.read_text()}
    assert declared == {("options.py", name) for name in SHARED}


def test_every_workdir_is_the_same_option():
    workdirs = _options("--workdir")
    assert len(workdirs) >= 5      # sweep, layers, net, drivers, clean
    assert {(type(o.type), o.default, o.show_default) for o in workdirs} == {(click.Path, DEFAULT_WORKDIR, True)}


def test_table_formats_are_the_same_choice_wherever_a_table_is_printed():
    formats = [o for o in _options("--format") if "simple" in o.type.choices]
    assert len(formats) == 6       # sweep, layers, net, table, report, compare
    assert {tuple(o.type.choices) for o in formats} == {TABLE_FORMATS}
