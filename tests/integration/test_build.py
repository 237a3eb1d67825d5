"""The build workload on real daemons: a docker build's steps, timed, beside the same steps on the
host, on overlay2 and on vfs, whose per-step copies of the whole image must show (needs root)."""

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
from storprof.storage.build import STEPS, TOTAL, buildkit_cli
from storprof.views.result_summary import ResultSummary
from tests.conftest import setup_provides, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]


def test_a_build_is_timed_step_by_step_beside_the_host_and_vfs_pays_for_every_step():
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-")) / "r"
    try:
        done = subprocess.run([sys.executable, "-m", "storprof.cli", "sweep", "--quick", "--drivers", "overlay2,vfs",
                               "--jobs", "build", "--placements", "host,union", "--repeat", "2", "--no-layers",
                               "--budget", "5", "--quiet", "--workdir", str(workdir), "--out", str(out)],
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        results = ResultSet.load(out)
        records = [r for r in results.of(ProbeRecord) if r.workload == "build"]
        for spec in ("overlay2@ext4", "vfs@ext4"):
            for placement in ("host", "union"):
                rows = {r.operation for r in records if r.context.driver_spec == spec and r.placement == placement}
                assert rows == {*STEPS, TOTAL}, (spec, placement, rows)
        union = [r for r in records if r.placement == "union"]
        # BuildKit where a docker CLI with its client is here (docker.io's 20.10 CLI has it built in)
        assert {r.params["builder"] for r in union} == {"buildkit" if buildkit_cli() else "classic"}
        # chown -R copies every unpacked file up into its layer: at least the files' bytes
        for r in union:
            if r.operation == "chown -R":
                assert r.bytes is not None and r.bytes >= r.files * r.file_bytes, r
        over = ResultSummary.of(results).over
        totals = over[(over["workload"] == "build") & (over["operation"] == TOTAL) & (over["placement"] == "union")]
        assert len(totals) == 2 and totals["ratio"].notna().all() and (totals["n_pairs"] >= 2).all()
        by_spec = dict(zip(totals["driver_spec"], totals["median"]))
        # vfs copies the whole image for each RUN step's container: its build takes longer than overlay2's
        assert by_spec["vfs@ext4"] > by_spec["overlay2@ext4"], totals.to_string()
        assert "build of 5000 files: total" in set(over["job"])
        assert not storprof_leftovers(str(workdir))
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
