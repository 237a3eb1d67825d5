"""storprof: what a Docker storage driver costs your I/O, against the bare host."""

__version__ = "0.1.0"
