"""The results store: one JSON line per finished run, appended the moment it ends.

Like pyperf's result files, every line carries a schema version and the metadata needed to
read it alone (driver, backing filesystem, versions, parameters); `meta.json` beside it keeps
what is true of the whole sweep (the machine, the command line). The raw fio JSON of each run
is kept under `raw/`, and each line names its file.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import __version__
from .errors import UserError

SCHEMA_VERSION = 1
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
    from .proc import run
    out = {}
    for key, argv in (("fio_version", ["fio", "--version"]), ("dockerd_version", ["dockerd", "--version"])):
        try:
            done = run(argv, timeout=30, check=False)
            out[key] = (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else None
        except Exception:          # not installed (attach mode may not need dockerd): recorded as unknown
            out[key] = None
    return out


class ResultsStore:
    """An output directory: results.jsonl (appended, fsynced per line), meta.json, raw/."""

    def __init__(self, out_dir: Path, meta: dict, resume: bool = False):
        self.dir = Path(out_dir)
        if resume:
            self._reopen(meta)
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "raw").mkdir(exist_ok=True)
            probe = self.dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise UserError(f"cannot write the output directory {self.dir}: {e.strerror}") from None
        self.path = self.dir / RESULTS_FILE
        full_meta = {"schema_version": SCHEMA_VERSION,
                     "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     **machine_metadata(), **meta}
        (self.dir / META_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=True) + "\n")

    def _reopen(self, meta: dict) -> None:
        """Resume: keep meta.json (adding this run to its `resumed` list) and cut a half-written
        last line, so the next append starts on a line of its own."""
        self.path = self.dir / RESULTS_FILE
        meta_path = self.dir / META_FILE
        if not self.path.is_file() or not meta_path.is_file():
            raise UserError(f"{self.dir} is not a storprof results directory (no {RESULTS_FILE} and {META_FILE})")
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]
        if complete != data:
            warnings.warn(f"{self.path}: cut a half-written last line ({len(data) - len(complete)} bytes)")
            with open(self.path, "r+b") as f:
                f.truncate(len(complete))
        old = json.loads(meta_path.read_text())
        old.setdefault("resumed", []).append({
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **meta})
        meta_path.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
        (self.dir / "raw").mkdir(exist_ok=True)

    def save_raw(self, rel_path: str, text: str) -> str:
        """Keep fio's own output; returns the path relative to the results directory."""
        path = self.dir / "raw" / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path.relative_to(self.dir))

    def append(self, record: dict) -> None:
        line = json.dumps({"schema_version": SCHEMA_VERSION,
                           "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           **record}, sort_keys=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_records(results_dir: Path) -> list[dict]:
    """Every complete line of results.jsonl; a half-written last line is skipped with a warning."""
    path = Path(results_dir) / RESULTS_FILE
    if not path.is_file():
        raise UserError(f"{results_dir} is not a storprof results directory (no {RESULTS_FILE})")
    records = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):
                warnings.warn(f"{path}:{i}: skipped a truncated last line")
                continue
            raise UserError(f"{path}:{i}: not a JSON line") from None
        version = rec.get("schema_version", 0)
        if version > SCHEMA_VERSION:
            raise UserError(f"{path}:{i}: schema_version {version} is newer than this storprof "
                            f"understands ({SCHEMA_VERSION}); upgrade storprof")
        records.append(rec)
    return records


# Records that are measurements of one (driver, placement, job, repeat): fio runs, and the union
# probes' timed samples (copy-up, deep stacks), whose metric is seconds.
MEASUREMENT_KINDS = ("fio", "probe")


def load_runs(results_dir: Path) -> pd.DataFrame:
    """The measurements (fio runs and probe samples) as a flat DataFrame, one row per run."""
    runs = [r for r in read_records(results_dir) if r.get("kind") in MEASUREMENT_KINDS]
    if not runs:
        return pd.DataFrame()
    rows = []
    for r in runs:
        row = {k: v for k, v in r.items() if k not in ("metrics", "params")}
        row.update(r.get("metrics") or {})
        row.update({f"param_{k}": v for k, v in (r.get("params") or {}).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def load_driver_status(results_dir: Path) -> list[dict]:
    """The per-driver records (ok, skipped with reason, failed with reason); after a resume, the
    last word on each driver."""
    latest: dict[str, dict] = {}
    for r in read_records(results_dir):
        if r.get("kind") == "driver":
            latest.pop(r.get("driver_spec"), None)
            latest[r.get("driver_spec")] = r
    return list(latest.values())
