"""`python -m storprof.cli`: the same entry point as the `storprof` script."""

from storprof.cli import main

main()
