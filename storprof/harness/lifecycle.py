"""The life of one run, the same for `storprof sweep` and `storprof net`: the work directory, the
ownership record written before anything is made, the run's scratch directory, and at the end
(also after an error, Ctrl-C or SIGTERM, which the CLI turns into exceptions) the scratch
directory removed, the ownership record finished and whatever it still owns named.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from storprof.harness.layout import RUNTIME_ROOT
from storprof.harness.state import RunState, dead_runs
from storprof.host import safepath


@contextlib.contextmanager
def owned_run(workdir: Path, run_id: str, message: Callable[[str], None]) -> Iterator[RunState]:
    """The run's ownership record, live for the `with` block. The scratch directory
    (workdir/run_id) is recorded before it is made, and removed at the end with what it holds."""
    workdir = safepath.make_private_dir(workdir, "work directory")
    killed = dead_runs(workdir)
    if killed:
        message(f"{workdir} holds leftovers of {len(killed)} killed run(s) ({', '.join(killed)}); "
                f"'storprof clean --workdir {workdir}' removes them")
    state = RunState(workdir, run_id, sys.argv)
    run_dir = workdir / run_id
    state.record("dir", what="run", path=str(run_dir))
    try:
        yield state
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            RUNTIME_ROOT.rmdir()       # only when no other run still uses it
        left = state.finish()
        if left:
            message(f"left behind: {'; '.join(left)}; 'storprof clean --workdir {workdir}' removes it")
