"""What every workload is to the sweep: units still to run, how to run one, how to clean up.

A workload (fio cells, copy-up, deep stacks, layer timing, ...) owns its units, its resume keys
and its row names; the sweep only asks it which units remain for a spec, lets it prepare once in
a session, runs units in the scheduler's order and sends each record to a Sink. New workloads
plug in here without the sweep learning about them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from storprof.results.records import Record

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet, ResultsStore


@dataclass(frozen=True)
class Unit:
    """One thing to measure once: a fio run of a job on a placement in a repeat, one probe sample,
    one layer-timing pass. `group` is what repeats belong to (a job, a probe size); `placement`
    and `repeat` say where and which; `key` is what a resumed sweep matches."""

    workload: str
    group: str
    placement: str
    repeat: int
    key: tuple
    label: str = ""

    def describe(self) -> str:
        return self.label or f"{self.group} {self.placement} r{self.repeat + 1}"


Done = frozenset   # resume keys of what a results directory already holds


class Sink:
    """Where a workload's records and messages go: the results store, as each record is made."""

    def __init__(self, store: ResultsStore, message: Callable[[str], None]):
        self.store = store
        self.message = message
        self.records: list[Record] = []     # what this sink has emitted (one session's, as the sweep uses it)

    @property
    def count(self) -> int:
        return len(self.records)

    def emit(self, record: Record) -> None:
        self.store.append(record)
        self.records.append(record)

    def save_raw(self, rel_path: str, text: str) -> str:
        """Keep a tool's own output beside the results; returns its path relative to them."""
        return self.store.save_raw(rel_path, text)


class Workload(Protocol):
    """The contract between a workload and the sweep."""

    name: str

    def done_keys(self, results: ResultSet) -> set[tuple]:
        """Keys of the units a results directory already holds (for --resume)."""
        ...

    def units(self, spec: str, done: Done) -> list[Unit]:
        """The units still to run for a spec, in the order they should run."""
        ...

    def prepare(self, session: Session, sink: Sink) -> None:
        """Once per session, before its first unit: images, containers, data files."""
        ...

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        """Run one unit, emit its records; returns a one-line summary for the progress display."""
        ...

    def cleanup(self, session: Session) -> None:
        """Remove what prepare and run made in the session (also after an error)."""
        ...


class Adaptive(Workload, Protocol):
    """A workload whose groups can get extra repeats (the scheduler's precision target)."""

    def group_of(self, record: Record) -> str | None:
        """The group (a job, a probe size) a record of this workload belongs to; None: not ours."""
        ...

    def extra_round(self, spec: str, group: str, repeat: int) -> list[Unit]:
        """The units of one more repeat of a group, its placements in the rotated order."""
        ...
