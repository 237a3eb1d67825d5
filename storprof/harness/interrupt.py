"""A run under a progress bar that Ctrl-C, SIGTERM and SIGHUP (a closed terminal) end cleanly:
every context manager tears down, what finished stays in the results, and the error says how to
go on."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from storprof.errors import StorprofError
from storprof.harness.progress import SweepProgress
from storprof.results import RESULTS_FILE

T = TypeVar("T")


class Interrupted(StorprofError):
    """The run was stopped by the user or the system; exit 130, as a shell reports Ctrl-C."""

    exit_code = 130


class _Terminated(Exception):
    """SIGTERM or SIGHUP, turned into an exception so every context manager tears down."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def interruptible(results_dir: Path, quiet: bool, run: Callable[[SweepProgress], T]) -> T:
    """`run(progress)` under a progress bar (none when `quiet`)."""
    progress = SweepProgress("quiet" if quiet else "auto")
    previous_handlers = {sig: signal.signal(sig, _on_sigterm) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return run(progress)
    except (KeyboardInterrupt, _Terminated):
        progress.close()
        raise Interrupted(f"interrupted; finished runs are kept in {results_dir}/{RESULTS_FILE} "
                          f"(continue with --resume {results_dir})") from None
    finally:
        progress.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
