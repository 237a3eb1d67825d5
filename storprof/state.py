"""The ownership record: what a run makes, written down before it is made.

Each run appends to `<workdir>/.storprof-state/<run_id>.jsonl` (fsynced per line): who owns it
(pid and process start time), then every backing filesystem, ephemeral daemon, scratch directory
and attached daemon's label before it is created. A run that ends normally checks that each is
gone and deletes its file. `storprof clean` reads the files of runs whose owner is no longer alive
(killed, kill -9 included) and removes what they list, by the records alone: a path or a network
namespace is only removed if it carries the run id, a loop device only if it is backed by the run's image, a
process only if its command line names the run's exec root, a container, image or volume only if
it has the run's label. Nothing else is touched.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker

from . import unionconfig
from .backing import BackingFS
from .containers import LABEL
from .daemon import EphemeralDaemon
from .errors import first_line
from .netns import NetNamespace

STATE_DIR = ".storprof-state"


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text.rsplit(")", 1)[1].split()[19])


def owner_alive(record: dict) -> bool:
    """Is the process that wrote this state file still running (the same process, not a reuse)?"""
    pid = record.get("pid")
    return pid is not None and _start_ticks(int(pid)) == record.get("start_ticks")


class RunState:
    """A run's ownership record; record() before making each thing, finish() when all is gone."""

    def __init__(self, workdir: Path, run_id: str, argv: list[str] | None = None):
        self.dir = Path(workdir) / STATE_DIR
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = self.dir / f"{run_id}.jsonl"
        self.run_id = run_id
        self.records: list[dict] = []
        self.record("run", pid=os.getpid(), start_ticks=_start_ticks(os.getpid()),
                    argv=list(argv or []), workdir=str(workdir))

    def record(self, kind: str, **fields) -> None:
        entry = {"kind": kind, "run_id": self.run_id, **fields}
        self.records.append(entry)
        with open(self.path, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finish(self) -> list[str]:
        """Delete the record if nothing it lists is left; else keep it for `storprof clean`."""
        left = leftovers(self.records)
        if not left:
            self.path.unlink(missing_ok=True)
            try:
                self.dir.rmdir()
            except OSError:
                pass
        return left


def read_state(path: Path) -> list[dict]:
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue                     # a line cut by the kill: the ones before it still count
    return records


def dead_runs(workdir: Path) -> list[str]:
    """Run ids with an ownership record under `workdir` whose owner is gone: a killed run's leftovers."""
    state_dir = Path(workdir) / STATE_DIR
    found = []
    for path in sorted(state_dir.glob("*.jsonl")) if state_dir.is_dir() else []:
        owner = next((r for r in read_state(path) if r.get("kind") == "run"), None)
        if owner is not None and not owner_alive(owner):
            found.append(owner.get("run_id") or path.stem)
    return found


@dataclass
class CleanReport:
    cleaned: list[str] = field(default_factory=list)      # run ids whose leftovers are gone
    running: list[str] = field(default_factory=list)      # run ids whose owner still runs
    problems: list[str] = field(default_factory=list)     # what could not be removed


def clean(workdir: Path, progress: Callable[[str], None] = lambda line: None) -> CleanReport:
    """Remove the leftovers of every dead run recorded under `workdir`."""
    report = CleanReport()
    state_dir = Path(workdir) / STATE_DIR
    for path in sorted(state_dir.glob("*.jsonl")) if state_dir.is_dir() else []:
        records = read_state(path)
        owner = next((r for r in records if r.get("kind") == "run"), {})
        run_id = owner.get("run_id") or path.stem
        if owner and owner_alive(owner):
            report.running.append(run_id)
            progress(f"{run_id}: still running (pid {owner.get('pid')}); not touched")
            continue
        problems = remove(records, progress)
        left = leftovers(records)
        if left or problems:
            report.problems += [f"{run_id}: {p}" for p in problems + left]
        else:
            path.unlink(missing_ok=True)
            report.cleaned.append(run_id)
    if state_dir.is_dir():
        try:
            state_dir.rmdir()
        except OSError:
            pass
    return report


# ---------------------------------------------------------------------- removal, by kind

def _ours(path: str | None, run_id: str) -> bool:
    return bool(path) and run_id in str(path)


def remove(records: list[dict], progress: Callable[[str], None] = lambda line: None) -> list[str]:
    """Remove what the records list, newest first; returns what failed."""
    problems: list[str] = []
    for rec in reversed(records):
        kind, run_id = rec.get("kind"), rec.get("run_id", "")
        try:
            if kind == "daemon" and _ours(rec.get("runtime_dir"), run_id):
                daemon = EphemeralDaemon.adopt(rec)
                if daemon.leftover():
                    progress(f"{run_id}: stopping dockerd of {rec.get('spec')} ({rec.get('runtime_dir')})")
                daemon.stop()
            elif kind == "backing" and _ours(rec.get("name"), run_id):
                fs = BackingFS.adopt(rec)
                if fs.leftover():
                    progress(f"{run_id}: removing {fs.path}" + (f" and {fs.image}" if fs.is_loop else ""))
                problems += fs.teardown()
            elif kind == "dir" and _ours(rec.get("path"), run_id):
                if os.path.lexists(rec["path"]):
                    progress(f"{run_id}: removing {rec['path']}")
                    shutil.rmtree(rec["path"], ignore_errors=True)
            elif kind == "attached":
                problems += _remove_labelled(rec, progress)
            elif kind == "overlay":
                for done in unionconfig.put_back(rec):
                    progress(f"{run_id}: put back {done}")
            elif kind == "netns" and _ours(rec.get("name"), run_id):
                ns = NetNamespace.adopt(rec)
                if ns.exists():
                    progress(f"{run_id}: deleting network namespace {ns.name}")
                ns.delete()
        except Exception as e:          # keep going: one stuck object must not hide the others
            problems.append(f"{kind}: {first_line(e)}")
    return problems


def leftovers(records: list[dict]) -> list[str]:
    """What the records list that still exists (empty when the run left nothing behind)."""
    left = []
    for rec in records:
        kind, run_id = rec.get("kind"), rec.get("run_id", "")
        if kind == "daemon" and _ours(rec.get("runtime_dir"), run_id):
            left += EphemeralDaemon.adopt(rec).leftover()
        elif kind == "backing" and _ours(rec.get("name"), run_id):
            left += BackingFS.adopt(rec).leftover()
        elif kind == "dir" and _ours(rec.get("path"), run_id) and os.path.lexists(rec["path"]):
            left.append(f"directory {rec['path']}")
        elif kind == "attached":
            left += _labelled(rec)
        elif kind == "overlay":
            left += unionconfig.still_set(rec)
        elif kind == "netns" and _ours(rec.get("name"), run_id):
            left += NetNamespace.adopt(rec).leftover()
    return left


def _attached_client(rec: dict):
    return docker.DockerClient(base_url=rec["docker_host"], version="auto", timeout=120)


def _labelled(rec: dict) -> list[str]:
    """Containers, volumes and images with this run's label on an attached daemon."""
    try:
        client = _attached_client(rec)
    except Exception:
        return []                         # the daemon is gone: nothing of ours can be left in it
    selector = {"label": f"{LABEL}={rec['run_id']}"}
    try:
        found = [f"container {c.name}" for c in client.containers.list(all=True, filters=selector)]
        found += [f"volume {v.name}" for v in client.volumes.list(filters=selector)]
        found += [f"image {i.short_id}" for i in client.images.list(filters=selector)]
        return found
    except Exception:
        return []
    finally:
        client.close()


def _remove_labelled(rec: dict, progress) -> list[str]:
    try:
        client = _attached_client(rec)
    except Exception:
        return []
    selector = {"label": f"{LABEL}={rec['run_id']}"}
    problems = []
    try:
        for c in client.containers.list(all=True, filters=selector):
            progress(f"{rec['run_id']}: removing container {c.name} from {rec['docker_host']}")
            c.remove(force=True)
        for v in client.volumes.list(filters=selector):
            progress(f"{rec['run_id']}: removing volume {v.name}")
            v.remove(force=True)
        for i in client.images.list(filters=selector):
            progress(f"{rec['run_id']}: removing image {i.short_id}")
            client.images.remove(i.id, force=True)
    except Exception as e:
        problems.append(f"attached daemon {rec['docker_host']}: {first_line(e)}")
    finally:
        client.close()
    work = rec.get("work") or ""
    if _ours(work, rec["run_id"]) and os.path.isdir(work):
        shutil.rmtree(work, ignore_errors=True)
    return problems
