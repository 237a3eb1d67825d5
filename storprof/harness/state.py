"""The ownership record: what a run makes, written down before it is made, and `storprof clean`.

Each run appends to `<workdir>/.storprof-state/<run_id>.jsonl` (root's, 0600, in a 0700 directory,
made with O_EXCL and appended without following symlinks, fsynced per line): who owns it (pid and
process start time), then every backing filesystem, ephemeral daemon, scratch directory, network
namespace, overlay parameter and attached daemon before it is made. A run that ends normally checks
that each is gone and deletes its file.

`storprof clean` derives; it does not believe. It reads only root's 0600 regular files named
`<run id>.jsonl` in a state directory root owns, of runs whose owner is no longer alive. From each
record it takes only what identifies the thing (a spec's name, an index, a namespace role) and
computes every path, process and name again from the run id and the work directory, as the
sessions build them (layout.py); a record whose paths differ from those is refused and reported.
Processes are matched by exact argv elements, mounts only below the run's own directories, the
overlay parameters only in the kernel's own directory. A malformed record is one line in the
report; cleaning goes on with the rest.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from storprof.harness.layout import RUN_ID, STATE_DIR, LayoutError, RunLayout
from storprof.harness.ownership import FORMAT, Owned, derive
from storprof.host import safepath

__all__ = ["STATE_DIR", "CleanReport", "RunState", "clean", "dead_runs", "leftovers", "owner_alive"]

# An ownership record is a few dozen lines; anything far larger was not written by storprof.
MAX_STATE_BYTES = 1 << 20
MAX_RECORDS = 10_000
_FILE = re.compile(rf"({RUN_ID.pattern})\.jsonl")


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        text = Path(f"/proc/{int(pid)}/stat").read_text()
        return int(text.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner_alive(record: dict) -> bool:
    """Is the process that wrote this state file still running (the same process, not a reuse)?"""
    pid, ticks = record.get("pid"), record.get("start_ticks")
    if type(pid) is not int or not 0 < pid < 1 << 22 or type(ticks) is not int:
        return False
    return _start_ticks(pid) == ticks


def _private_state_dir(layout: RunLayout) -> Path:
    """The state directory, made 0700 if missing; refused unless it is root's own and private."""
    safepath.require_safe(layout.workdir, "work directory")
    try:
        os.mkdir(layout.state_dir, 0o700)
    except FileExistsError:
        pass
    problem = _not_private(layout.state_dir, stat.S_ISDIR, 0o700)
    if problem:
        raise StateError(problem)
    return layout.state_dir


class StateError(OSError):
    """The state directory or a record in it is not one storprof made."""


def _not_private(path: Path, kind: Callable[[int], bool], mode: int, st: os.stat_result | None = None) -> str | None:
    try:
        st = st or os.lstat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not kind(st.st_mode):
        return f"{path} is not a {'directory' if kind is stat.S_ISDIR else 'regular file'}"
    if st.st_uid != os.geteuid():
        return f"{path} is owned by uid {st.st_uid}, not by root"
    if stat.S_IMODE(st.st_mode) != mode:
        return f"{path} has mode {stat.S_IMODE(st.st_mode):o}, not {mode:o}"
    return None


class RunState:
    """A run's ownership record; record() before making each thing, finish() when all is gone."""

    def __init__(self, workdir: Path, run_id: str, argv: list[str] | None = None):
        self.layout = RunLayout(Path(os.path.abspath(workdir)), run_id)
        self.dir = _private_state_dir(self.layout)
        self.path = self.layout.state_file
        self.run_id = run_id
        self.records: list[dict] = []
        owner = self._entry("run", format=FORMAT, pid=os.getpid(), start_ticks=_start_ticks(os.getpid()),
                            argv=[str(a)[:4096] for a in (argv or [])][:200], workdir=str(self.layout.workdir))
        safepath.write_new(self.path, _line(owner), mode=0o600)
        self.records.append(owner)

    def _entry(self, kind: str, **fields) -> dict:
        return {"kind": kind, "run_id": self.run_id, **fields}

    def record(self, kind: str, **fields) -> None:
        entry = self._entry(kind, **fields)
        self.records.append(entry)
        fd = safepath.open_append(self.path)
        try:
            os.write(fd, _line(entry).encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def finish(self) -> list[str]:
        """Delete the record if nothing it lists is left; else keep it for `storprof clean`."""
        left = leftovers(self.records, self.layout)
        if not left:
            self.path.unlink(missing_ok=True)
            try:
                self.dir.rmdir()
            except OSError:
                pass
        return left


def _line(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True) + "\n"


@dataclass
class StateFile:
    """One ownership record read back: its run's layout, its records, and what was wrong in it."""

    layout: RunLayout
    records: list[dict]
    problems: list[str]

    @property
    def owner(self) -> dict | None:
        return next((r for r in self.records if r.get("kind") == "run"), None)


def _state_files(workdir: Path, problems: list[str]) -> list[StateFile]:
    """Every record in the work directory's state directory that storprof could have written."""
    workdir = Path(os.path.abspath(workdir))
    state_dir = workdir / STATE_DIR
    if not os.path.lexists(state_dir):
        return []
    problem = safepath.unsafe_reason(workdir) or _not_private(state_dir, stat.S_ISDIR, 0o700)
    if problem:
        problems.append(f"{state_dir} not read: {problem}")
        return []
    found = []
    for entry in sorted(os.scandir(state_dir), key=lambda e: e.name):
        match = _FILE.fullmatch(entry.name)
        if not match:
            problems.append(f"{entry.path}: not a record storprof makes (ignored)")
            continue
        try:
            found.append(_read(RunLayout(workdir, match.group(1)), Path(entry.path)))
        except (OSError, LayoutError) as exc:
            problems.append(f"{entry.path}: {exc}")
    return found


def _read(layout: RunLayout, path: Path) -> StateFile:
    """The records of one file, read through a descriptor checked to be root's private file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        problem = _not_private(path, stat.S_ISREG, 0o600, os.fstat(fd))
        if problem:
            raise StateError(f"not read: {problem}")
        data = os.read(fd, MAX_STATE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_STATE_BYTES:
        raise StateError(f"not read: larger than {MAX_STATE_BYTES} bytes")
    records, problems = [], []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines[:MAX_RECORDS], 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            if number < len(lines) or raw.endswith(b"}"):
                problems.append(f"{path}:{number}: not a JSON record (skipped)")
            continue                     # else a line cut by the kill: the ones before it still count
        if not isinstance(entry, dict) or entry.get("run_id") != layout.run_id:
            problems.append(f"{path}:{number}: not a record of run {layout.run_id} (skipped)")
            continue
        records.append(entry)
    return StateFile(layout, records, problems)


def dead_runs(workdir: Path) -> list[str]:
    """Run ids with an ownership record under `workdir` whose owner is gone: a killed run's leftovers."""
    found = []
    for sf in _state_files(workdir, []):
        if sf.owner is not None and not owner_alive(sf.owner):
            found.append(sf.layout.run_id)
    return found


@dataclass
class CleanReport:
    cleaned: list[str] = field(default_factory=list)      # run ids whose leftovers are gone
    running: list[str] = field(default_factory=list)      # run ids whose owner still runs
    problems: list[str] = field(default_factory=list)     # what could not be removed, or was refused


def clean(workdir: Path, progress: Callable[[str], None] = lambda line: None) -> CleanReport:
    """Remove the leftovers of every dead run recorded under `workdir`, as derived from its records."""
    report = CleanReport()
    files = _state_files(workdir, report.problems)
    for sf in files:
        run_id = sf.layout.run_id
        report.problems += sf.problems
        if sf.owner is None:
            report.problems.append(f"{sf.layout.state_file}: no owner record; not touched")
            continue
        if owner_alive(sf.owner):
            report.running.append(run_id)
            progress(f"{run_id}: still running (pid {sf.owner.get('pid')}); not touched")
            continue
        owned, refused = _derive_all(sf.records, sf.layout)
        problems = refused + remove(owned, functools.partial(_say, progress, run_id))
        left = [what for thing in owned for what in thing.leftover()]
        report.problems += [f"{run_id}: {p}" for p in problems + left]
        if not (left or problems or sf.problems):     # a record with unreadable lines is kept to look at
            sf.layout.state_file.unlink(missing_ok=True)
            report.cleaned.append(run_id)
    state_dir = Path(os.path.abspath(workdir)) / STATE_DIR
    if files and safepath.is_dir_nofollow(state_dir):
        try:
            state_dir.rmdir()
        except OSError:
            pass
    return report


def _say(progress: Callable[[str], None], run_id: str, line: str) -> None:
    progress(f"{run_id}: {line}")


def _derive_all(records: list[dict], layout: RunLayout) -> tuple[list[Owned], list[str]]:
    """What the records name, each recomputed from the layout; and the records refused."""
    owned, refused = [], []
    for rec in records:
        try:
            thing = derive(rec, layout)
        except (LayoutError, KeyError, TypeError, ValueError) as exc:
            refused.append(f"refused a {str(rec.get('kind'))[:20]!r} record: {exc}")
            continue
        if thing is not None:
            owned.append(thing)
    return owned, refused


def remove(owned: list[Owned], progress: Callable[[str], None] = lambda line: None) -> list[str]:
    """Remove what a run made, newest first; returns what failed."""
    problems: list[str] = []
    for thing in reversed(owned):
        try:
            problems += thing.remove(progress)
        except Exception as e:          # keep going: one stuck object must not hide the others
            problems.append(f"{thing.what}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    return problems


def leftovers(records: list[dict], layout: RunLayout) -> list[str]:
    """What the records list that still exists (empty when the run left nothing behind)."""
    owned, refused = _derive_all(records, layout)
    return refused + [what for thing in owned for what in thing.leftover()]


def remove_tree(path: Path) -> None:
    """rmtree of a directory storprof made, never through a symlink (shutil's fd-based rmtree)."""
    if safepath.is_dir_nofollow(path):
        shutil.rmtree(path)
