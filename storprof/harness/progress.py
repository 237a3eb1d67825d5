"""What a running sweep shows: a progress bar on a terminal, a line per finished cell elsewhere.

tqdm draws the bar (cells done of the total, the current driver, placement and job, elapsed time
and an estimate of what remains) and keeps the sweep's other messages above it; when stderr is
not a terminal (CI, a log file) each finished cell is one plain line instead, and `--quiet`
shows neither.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm


class SweepProgress:
    def __init__(self, mode: str = "auto", stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        self.mode = mode          # bar | lines | quiet
        self._bar: tqdm | None = None
        self._total = 0

    def add_total(self, units: int) -> None:
        """Grow (or, for a skipped driver, shrink) the number of cells the bar expects."""
        self._total = max(0, self._total + units)
        if self._bar is not None:
            self._bar.total = self._total
            self._bar.refresh()

    def _ensure_bar(self) -> tqdm:
        if self._bar is None:
            try:
                size = os.get_terminal_size(self.stream.fileno())
            except (OSError, ValueError, AttributeError):
                size = os.terminal_size((0, 0))
            # A terminal that reports no size (a bare pty) would make tqdm draw nothing at all.
            sized = size.columns > 0 and size.lines > 0
            self._bar = tqdm(total=self._total, file=self.stream, unit="cell", dynamic_ncols=sized,
                             ncols=None if sized else 100, nrows=None if sized else 24,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}")
        return self._bar

    def message(self, line: str) -> None:
        """A sweep event (daemon up, driver skipped, a probe starting)."""
        if self.mode == "bar":
            self._ensure_bar().write(line, file=self.stream)
        elif self.mode == "lines":
            print(line, file=self.stream, flush=True)

    def unit_done(self, spec: str, what: str, summary: str) -> None:
        """One unit finished: `what` it was (e.g. 'randread-4k union r2') and its summary."""
        if self.mode == "bar":
            bar = self._ensure_bar()
            bar.set_description_str(f"[{spec}]", refresh=False)
            short = summary if len(summary) <= 32 else summary[:31] + "…"     # leave the bar room
            bar.set_postfix_str(f"{what}: {short}", refresh=False)
            bar.update(1)
        elif self.mode == "lines":
            print(f"[{spec}] {what}: {summary}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class LineProgress:
    """The same interface for a plain callable taking lines (tests, benchmarks, logs)."""

    def __init__(self, write: Callable[[str], None]):
        self.write = write

    def add_total(self, units: int) -> None:
        pass

    def message(self, line: str) -> None:
        self.write(line)

    def unit_done(self, spec: str, what: str, summary: str) -> None:
        self.write(f"[{spec}] {what}: {summary}")

    def close(self) -> None:
        pass


Progress = SweepProgress | LineProgress


def as_progress(progress: Progress | Callable[[str], None]) -> Progress:
    return progress if isinstance(progress, (SweepProgress, LineProgress)) else LineProgress(progress)


class SessionTally:
    """A session's units on the progress total: those planned, plus any extra rounds, less those
    done. What is left when the session ends (it failed part way) comes off the total, so an extra
    round is counted once and a failed session does not leave the bar short of 100%."""

    def __init__(self, progress: Progress, planned: int):
        self.progress, self.left = progress, planned

    def done(self) -> None:
        self.left -= 1

    def more(self, units: int) -> None:
        self.left += units
        self.progress.add_total(units)

    def close(self) -> None:
        self.progress.add_total(-self.left)
        self.left = 0
