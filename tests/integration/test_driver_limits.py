"""The depth search, daemon start and the snapshotter benchmark in every view (needs root): a
small real sweep of each on overlay2, then `table`, `report` and `compare` on its results."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from storprof import results
from storprof.engine.drivers import DriverSpec
from storprof.harness.plan import SweepPlan
from storprof.harness.sweep import Sweep
from storprof.storage.daemonstart import DaemonStartPlan
from storprof.storage.maxdepth import MaxDepthPlan
from storprof.storage.snapbench import SnapBenchPlan
from tests.conftest import setup_provides, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storprof.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def swept():
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-"))
    plan = SweepPlan(specs=[DriverSpec("overlay2", "ext4")], jobs=[], placements=("host", "union"), repeat=2,
                     workdir=workdir, max_depth=MaxDepthPlan(ceiling=3, first=2),
                     snapbench=SnapBenchPlan(2, 2, 64), daemon_start=DaemonStartPlan((0, 3), 2))
    store = results.ResultsStore(out, {"test": True})
    lines: list[str] = []
    outcomes = Sweep(plan, store, lines.append).run()
    assert [o.status for o in outcomes] == ["ok"], (outcomes, lines[-5:])
    assert not storprof_leftovers(str(workdir))
    yield store.dir
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)


def test_their_tables_are_in_the_table_the_report_and_compare(swept):
    out = swept
    table = _cli("table", str(out))
    assert table.returncode == 0, table.stderr
    for title in ("containerd's snapshotter benchmark", "The deepest image each driver creates and runs",
                  "Daemon start against the images it holds", "Union configuration"):
        assert title in table.stdout, title
    assert "none up to 3" in table.stdout
    report = _cli("report", str(out))
    assert report.returncode == 0, report.stderr
    html = (out / "report.html").read_text()
    assert "Daemon start against the images it holds" in html and "none up to 3" in html
    compared = _cli("compare", "--all", str(out), str(out))
    assert compared.returncode == 0, compared.stderr
    assert "daemon start 3 images" in compared.stdout and "snapbench commit" in compared.stdout
