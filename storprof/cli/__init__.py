"""The storprof command line: one module per command group, shared options declared once."""

from storprof.cli.commands import main

__all__ = ["main"]
