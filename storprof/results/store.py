"""The results store: one JSON line per finished run, appended the moment it ends.

Like pyperf's result files, every line carries a schema version and the metadata needed to
read it alone (driver, backing filesystem, versions, parameters); `meta.json` beside it keeps
what is true of the whole sweep (the machine, the command line). The raw fio JSON of each run
is kept under `raw/`, and each line names its file.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from storprof import __version__
from storprof.errors import UserError
from storprof.host import safepath
from storprof.results.check import check_record, check_version
from storprof.results.files import MAX_RESULTS_BYTES, read_lines, read_meta
from storprof.results.migrate import migrate
from storprof.results.records import (
    MEASUREMENTS,
    RECORD_TYPES,
    SCHEMA_VERSION,
    DriverRecord,
    LayerRecord,
    ProbeRecord,
    Record,
)
from storprof.results.text import printable

RESULTS_FILE = "results.jsonl"
META_FILE = "meta.json"


def default_out_dir(base: Path = Path("storprof-results")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return base / stamp


def _meminfo() -> dict[str, str]:
    meminfo = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            k, v = line.split(":", 1)
            meminfo[k] = v.strip()
    except OSError:
        pass
    return meminfo


def mem_total_bytes() -> int | None:
    """The machine's memory, which decides whether a buffered job's file fits in the page cache."""
    try:
        return int(_meminfo()["MemTotal"].split()[0]) * 1024
    except (KeyError, ValueError, IndexError):
        return None


def machine_metadata() -> dict:
    """Facts about the machine that every number depends on."""
    meminfo = _meminfo()
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "mem_total": meminfo.get("MemTotal"),
        "python": sys.version.split()[0],
        "storprof_version": __version__,
    }


def tool_versions() -> dict:
    """fio's and dockerd's own version lines (each run's record also keeps what it ran with)."""
    from storprof.engine.versions import dockerd_version
    from storprof.host.proc import run
    try:
        done = run(["fio", "--version"], timeout=30, check=False)
        fio = (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else None
    except Exception:          # not installed: recorded as unknown
        fio = None
    return {"fio_version": fio, "dockerd_version": dockerd_version().line}


class ResultsStore:
    """An output directory: results.jsonl (appended, fsynced per line), meta.json, raw/.

    The directory must pass safepath's check (root or you own every component, nobody else can
    write it), so only trusted users can put names in it; and even so nothing is written through
    a name found there: meta.json is replaced (a new file renamed over it), results.jsonl is
    appended to with O_NOFOLLOW and must be a regular file, raw/ must be a real directory."""

    def __init__(self, out_dir: Path, meta: dict, resume: bool = False):
        # Root writes every result below it: each component must be root's (or the invoking
        # user's) and writable by nobody else, checked before anything starts (safepath).
        self.dir = safepath.make_private_dir(out_dir, "results directory", mode=0o755)
        if resume:
            self._reopen(meta)
            return
        try:
            safepath.real_subdir(self.dir / "raw", "results directory")
            marker = self.dir / f".write-test.{os.getpid()}"
            safepath.write_new(marker, "")
            marker.unlink()
        except OSError as e:
            raise UserError(f"cannot write the output directory {self.dir}: "
                            f"{safepath.open_error(e.filename or self.dir, e)}") from None
        self.path = self.dir / RESULTS_FILE
        full_meta = {"schema_version": SCHEMA_VERSION,
                     "started": datetime.now(UTC).isoformat(timespec="seconds"),
                     **machine_metadata(), **meta}
        self._meta, self._resumed = full_meta, False
        self._write_meta()

    def _reopen(self, meta: dict) -> None:
        """Resume: keep meta.json (adding this run to its `resumed` list) and cut a half-written
        last line, so the next append starts on a line of its own."""
        safepath.require_safe(self.dir, "results directory")
        self.path = self.dir / RESULTS_FILE
        meta_path = self.dir / META_FILE
        try:
            data = safepath.read_regular(self.path, MAX_RESULTS_BYTES)
            old = read_meta(meta_path)
        except FileNotFoundError:
            raise UserError(f"{self.dir} is not a storprof results directory (no {RESULTS_FILE} and {META_FILE})") \
                from None
        except OSError as e:
            raise UserError(f"cannot resume in {self.dir}: {safepath.open_error(self.path, e)}") from None
        complete = data[:data.rfind(b"\n") + 1]
        if complete != data:
            warnings.warn(f"{self.path}: cut a half-written last line ({len(data) - len(complete)} bytes)",
                          stacklevel=2)
            fd = os.open(self.path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.ftruncate(fd, len(complete))
            finally:
                os.close(fd)
        old.setdefault("resumed", []).append({
            "time": datetime.now(UTC).isoformat(timespec="seconds"), **meta})
        self._meta, self._resumed = old, True
        self._write_meta()
        safepath.real_subdir(self.dir / "raw", "results directory")

    def _write_meta(self) -> None:
        safepath.replace(self.dir / META_FILE, json.dumps(self._meta, indent=2, sort_keys=True) + "\n")

    def save_time_account(self, account: dict) -> None:
        """Keep this run's time account (harness/timeaccount.py) in meta.json, replacing the one
        written when the previous spec ended; a resumed run's goes in its entry of `resumed`."""
        (self._meta["resumed"][-1] if self._resumed else self._meta)["time_account"] = account
        self._write_meta()

    def save_raw(self, rel_path: str, text: str) -> str:
        """Keep fio's own output; returns the path relative to the results directory."""
        path = self.dir / "raw" / rel_path
        directory = self.dir / "raw"
        for part in Path(rel_path).parent.parts:
            directory = safepath.real_subdir(directory / part, "results directory")
        safepath.replace(path, text)
        return str(path.relative_to(self.dir))

    def append(self, record: Record) -> None:
        """One record, as one line, on disk before this returns."""
        line = {**record.to_json(), "time": datetime.now(UTC).isoformat(timespec="seconds")}
        fd = safepath.open_append(self.path, 0o644)
        try:
            os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class ResultSet:
    """A results directory read once: its meta and records, and the views every command needs."""

    dir: Path
    meta: dict[str, Any]
    records: list[Record]

    @classmethod
    def load(cls, results_dir: Path | str) -> ResultSet:
        """Every complete line of results.jsonl, made current (migrate.py), each field checked
        (recordcheck.py); a half-written last line is skipped with a warning, a newer schema
        refused, kinds this version does not know kept out (one warning). Files are read as
        resultsfile.py says: no symlink, capped."""
        results_dir = Path(results_dir)
        path = results_dir / RESULTS_FILE
        if not results_dir.is_dir():
            raise UserError(f"{results_dir} is not a storprof results directory (not a directory)")
        records: list[Record] = []
        unknown: set[str] = set()
        try:
            for number, data in read_lines(path):
                where = f"{path}:{number}"
                check_version(data, where)
                kind = data.get("kind")
                if not isinstance(kind, str):
                    raise UserError(f"{where}: a line without a 'kind' string")
                data = migrate(data)
                if kind not in RECORD_TYPES:
                    unknown.add(printable(kind[:40]))
                    continue
                check_record(RECORD_TYPES[kind], data, where)
                records.append(RECORD_TYPES[kind].from_json(data))
        except FileNotFoundError:
            raise UserError(f"{results_dir} is not a storprof results directory (no {RESULTS_FILE})") from None
        try:
            meta = read_meta(results_dir / META_FILE)
        except FileNotFoundError:         # lines written by hand or by a tool: no machine facts
            meta = {}
        if unknown:
            warnings.warn(f"{path}: skipped lines of kinds this storprof does not know ({', '.join(sorted(unknown))})",
                          stacklevel=2)
        return cls(results_dir, meta, records)

    def of(self, kind: type[R]) -> list[R]:
        return [r for r in self.records if isinstance(r, kind)]

    @functools.cached_property
    def runs(self) -> pd.DataFrame:
        """The measurements (fio runs and probe samples) as a flat DataFrame, one row per run:
        the record's fields, its metrics as columns and its params as param_<name>; a probe
        sample's `job` is its row's display text (views/labels.py), as a fio run's is its job."""
        from storprof.views.labels import record_label
        rows = []
        for r in self.records:
            if not isinstance(r, MEASUREMENTS):
                continue
            data = r.to_json()
            row = {k: v for k, v in data.items() if k not in ("metrics", "params")}
            row.update(data.get("metrics") or {})
            row.update({f"param_{k}": v for k, v in (data.get("params") or {}).items()})
            if isinstance(r, ProbeRecord):
                row["job"] = record_label(r)
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def drivers(self) -> list[DriverRecord]:
        """Each spec's last word (after a resume, the latest record)."""
        latest: dict[str, DriverRecord] = {}
        for r in self.of(DriverRecord):
            latest.pop(r.driver_spec, None)
            latest[r.driver_spec] = r
        return list(latest.values())

    @property
    def layers(self) -> list[LayerRecord]:
        return self.of(LayerRecord)


R = TypeVar("R", bound=Record)

