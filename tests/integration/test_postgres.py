"""The postgres workload on real daemons: pgbench against PostgreSQL with its data on the top layer,
a volume and a bind mount, beside the same server in the host sandbox, on a graphdriver and on a
containerd snapshotter (needs root and Debian's postgresql)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from storprof.results import ResultSet
from storprof.results.records import ProbeRecord
from storprof.storage import pgbench
from storprof.views.result_summary import ResultSummary
from tests.conftest import setup_provides, storprof_leftovers


def _server() -> bool:
    try:
        pgbench.find_server()
    except Exception:
        return False
    return True


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
    setup_provides(_server(), "PostgreSQL is not installed (package postgresql)"),
]
SPECS = ("overlay2@ext4", "c8d-overlayfs@ext4:28.5.2")
PLACEMENTS = ("host", "union", "volume", "bind")


def test_pgbench_runs_on_every_placement_with_ratios_to_the_host_and_leaves_nothing():
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-")) / "r"
    try:
        done = subprocess.run([sys.executable, "-m", "storprof.cli", "sweep", "--quick", "--drivers", ",".join(SPECS),
                               "--jobs", "postgres", "--placements", ",".join(PLACEMENTS), "--repeat", "2",
                               "--no-layers", "--budget", "5", "--quiet", "--workdir", str(workdir),
                               "--out", str(out)], capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, done.stderr[-2000:]
        results = ResultSet.load(out)
        records = [r for r in results.of(ProbeRecord) if r.workload == "postgres"]
        failed = [(r.context.driver_spec, r.placement, r.operation, r.error) for r in records if r.status != "ok"]
        assert failed == []
        operations = {f"{m}: {s}" for m in pgbench.MODES for s in pgbench.STATS}
        for spec in SPECS:
            for placement in PLACEMENTS:
                got = {r.operation for r in records if r.context.driver_spec == spec and r.placement == placement}
                assert got == operations, (spec, placement, got)
        for r in records:
            assert r.seconds > 0 and "fsync=on" in r.params["settings"] and r.params["tps"] > 0
            if r.operation.startswith(pgbench.COLD):
                # the cold run's files were evicted first: the database's bytes at least
                assert r.params["evicted_bytes"] > r.scale * (10 << 20), r
        # a commit waits for its WAL fsync: TPC-B-like takes longer per transaction than a select
        by = {(r.context.driver_spec, r.placement, r.repeat, r.operation): r.seconds for r in records}
        for spec, placement, repeat, operation in by:
            if operation == pgbench.COMMITS:
                assert by[(spec, placement, repeat, operation)] > by[(spec, placement, repeat,
                                                                        f"{pgbench.SELECT}: {pgbench.STATS[0]}")]
        over = ResultSummary.of(results).over
        rows = over[(over["workload"] == "postgres") & (over["placement"] != "host")]
        assert len(rows) == len(SPECS) * 3 * len(operations)
        assert rows["ratio"].notna().all() and (rows["n_pairs"] >= 2).all()
        assert (rows["ratio_low"] <= rows["ratio"]).all() and (rows["ratio"] <= rows["ratio_high"]).all()
        # the answer opens with the database line, from these rows
        assert done.stdout.splitlines()[0].startswith("The answer by use case")
        assert "Databases: PostgreSQL TPC-B-like commits" in done.stdout
        assert "union pgbench" in done.stdout
        assert not storprof_leftovers(str(workdir))
        assert list(workdir.iterdir()) == []
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
