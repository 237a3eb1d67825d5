"""storprof drivers: every known driver spec and whether this host can run it, as the driver
records a sweep writes for the specs it skips."""

from __future__ import annotations

from pathlib import Path

from storprof.engine import drivers
from storprof.host.mounts import host_fs_type
from storprof.results.records import DriverRecord


def driver_status(workdir: Path) -> list[DriverRecord]:
    """`ok`, or why not, for every spec on the filesystem of `workdir` (where loop files would go)."""
    host_fs = host_fs_type(workdir)
    facts = drivers.host_facts(host_fs)
    rows = []
    for spec in drivers.default_specs(host_fs, list(facts.engines)):
        reason = drivers.unavailable(spec, facts=facts)
        rows.append(DriverRecord(run_id="", driver_spec=str(spec), driver=spec.driver, fs=spec.fs,
                                 status="ok" if not reason else "skipped", reason=reason or spec.info.note))
    return rows
