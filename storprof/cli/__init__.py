"""The storprof command line: one module per command group, shared options declared once."""

from storprof.cli.app import main

__all__ = ["main"]
